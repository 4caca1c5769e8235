"""Ids of new rows of every kind (cards, codes, transactions, events, reservations, audit events).

One generator hands out every id, so an id names one row of one kind: a transaction id never finds a
card. An id is a positive signed 64-bit integer (a PostgreSQL BIGINT; SQLite's INTEGER PRIMARY KEY):

    bit 63       0, the sign bit
    bits 62..22  milliseconds since EPOCH (41 bits, enough until 2095)
    bits 21..12  the process's node number (10 bits)
    bits 11..0   random, from ``secrets`` (12 bits)

Ids are ordered by creation time to the millisecond, and the random low bits keep them from being
dense: the gap between two ids says when, not how many. Rows from before this scheme keep their
small ids, which sort before every new one (the millisecond count is at least ``_FLOOR``).

Each server process claims a node number from the database as it starts (app.db.claim_id_node, a
counter taken modulo 1,024), so processes started one after another differ in those bits. Two
running processes share one only when 1,024 others started between them (a process that outlives
that many restarts); then a clash also needs the same millisecond and the same 12 random bits, and
the primary key refuses the second row (its request fails whole). Ids are time-ordered to the
millisecond within a process; between processes, ids of one millisecond order by node, and clocks
of different hosts may disagree. Within one process the generator is monotonic: when the clock has
not moved past the last id (a burst in one millisecond, or a clock set back), the next id takes the
last one's millisecond and a larger random part, borrowing the next millisecond when the part is
used up. So one process never hands out an id twice.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH_MS = int(EPOCH.timestamp()) * 1000
NODE_BITS = 10
RANDOM_BITS = 12
LOW_BITS = NODE_BITS + RANDOM_BITS
NODES: int = 2**NODE_BITS
MAX_ID: int = 2**63 - 1
_STEP = 64  # the largest random step between two ids of one millisecond
# Every new id is above 2^31, so above every id of the 32-bit columns before this scheme.
_FLOOR: int = 2 ** (31 - LOW_BITS)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class IdGenerator:
    """Hands out ids as the module docstring lays them out; safe to share between threads. Until
    :meth:`bind` names the node claimed from the database, the node is a random one."""

    def __init__(self, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._clock_ms = clock_ms  # milliseconds since the Unix epoch
        self._node = secrets.randbelow(NODES)
        self._last = (0, 0)  # the millisecond and random part of the last id
        self._lock = threading.Lock()

    def bind(self, node: int) -> None:
        """Use ``node`` (from 0 to NODES - 1) for the ids handed out from now on."""
        if not 0 <= node < NODES:
            raise ValueError(f"a node number is from 0 to {NODES - 1}")
        with self._lock:
            self._node = node

    def __call__(self) -> int:
        elapsed = max(self._clock_ms() - EPOCH_MS, _FLOOR)
        with self._lock:
            last_ms, last_random = self._last
            if elapsed > last_ms:
                ms, random_part = elapsed, secrets.randbits(RANDOM_BITS)
            else:  # the same millisecond, or the clock went back: after the last one
                ms, random_part = last_ms, last_random + 1 + secrets.randbelow(_STEP)
                if random_part >> RANDOM_BITS:  # past the last random part
                    ms, random_part = last_ms + 1, secrets.randbelow(_STEP)
            candidate = (ms << LOW_BITS) | (self._node << RANDOM_BITS) | random_part
            if candidate > MAX_ID:
                raise RuntimeError("the clock is past the last millisecond a 64-bit id can hold")
            self._last = (ms, random_part)
            return candidate


new_id = IdGenerator()
"""The one generator of this process; every table's id column calls it for a new row."""
