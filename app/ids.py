"""Ids of new rows of every kind (cards, codes, transactions, events, reservations, audit events).

One generator hands out every id, so an id names one row of one kind: a transaction id never finds a
card. An id is a positive signed 64-bit integer (a PostgreSQL BIGINT; SQLite's INTEGER PRIMARY KEY):

    bit 63       0, the sign bit
    bits 62..22  milliseconds since EPOCH (41 bits, enough until 2095)
    bits 21..0   random, from ``secrets`` (22 bits)

Ids are ordered by creation time to the millisecond, and the random low bits keep them from being
dense: the gap between two ids says when, not how many. Rows from before this scheme keep their
small ids, which sort before every new one (the millisecond count is at least ``_FLOOR``).

Within one process the generator is monotonic: when the clock has not moved past the last id (a
burst in one millisecond, or a clock set back), the next id is the last plus a random step of 1 to
2^16, so one process never repeats an id and needs no retry. Two processes repeat one only by
drawing the same 22 bits in the same millisecond; the primary key refuses that row, and the
request fails as a whole (its unit of work rolls back) rather than writing a duplicate.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH_MS = int(EPOCH.timestamp()) * 1000
RANDOM_BITS = 22
MAX_ID = 2**63 - 1
_STEP = 2**16
# Every new id is above 2^31, so above every id of the 32-bit columns before this scheme.
_FLOOR = 2 ** (31 - RANDOM_BITS)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class IdGenerator:
    """Hands out ids as the module docstring lays them out; safe to share between threads."""

    def __init__(self, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._clock_ms = clock_ms  # milliseconds since the Unix epoch
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        elapsed = max(self._clock_ms() - EPOCH_MS, _FLOOR)
        candidate: int = (elapsed << RANDOM_BITS) | secrets.randbits(RANDOM_BITS)
        with self._lock:
            if candidate <= self._last:
                candidate = self._last + 1 + secrets.randbelow(_STEP)
            if candidate > MAX_ID:
                raise RuntimeError("the clock is past the last millisecond a 64-bit id can hold")
            self._last = candidate
            return candidate


new_id = IdGenerator()
"""The one generator of this process; every table's id column calls it for a new row."""
