"""Refused mutations counted in memory, so a caller refused again and again writes one audit row a
minute instead of one per request.

Tallies, by (subject, operation, outcome, minute), are inserted as one row each with its ``count``
(the table is append-only) once their minute is over, and all of them when the process holds too
many or stops. A process that dies loses what it holds (what a failed write could not store is
held for the next one). Several processes write their own rows for one minute: readers sum ``count``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from app.store.audit import AuditRecord

log = logging.getLogger("app.audit")

MINUTE = timedelta(minutes=1)
# Tallies held at most; reaching it writes them all, the current minute's too (readers sum counts).
MAX_PENDING = 10_000

_Key = tuple[str | None, str, str, datetime]  # subject, action, outcome, minute


def _key(record: AuditRecord) -> _Key:
    return record.subject, record.action, record.outcome, record.occurred_at.replace(second=0, microsecond=0)


def _merged(held: AuditRecord, added: AuditRecord) -> AuditRecord:
    """One tally for both: the earlier one's time and request id, the client address only when
    every refusal counted came from it."""
    first, later = (held, added) if held.occurred_at <= added.occurred_at else (added, held)
    address = first.client_address if first.client_address == later.client_address else None
    return replace(first, count=first.count + later.count, client_address=address)


class RefusalCounts:
    """Tallies of refusals waiting to be written; safe to use from any thread. ``write`` (one
    transaction) runs outside the lock, so a slow database holds up only the thread that writes."""

    def __init__(
        self, write: Callable[[Sequence[AuditRecord]], None], *, max_pending: int = MAX_PENDING
    ) -> None:
        self._write = write
        self._max_pending = max_pending
        self._pending: dict[_Key, AuditRecord] = {}
        self._oldest: datetime | None = None  # the earliest minute held, None when nothing is
        self._lock = threading.Lock()

    def add(self, record: AuditRecord) -> None:
        """Count one refusal (at ``record.occurred_at``, now); write the tallies that are due."""
        with self._lock:
            self._hold(_key(record), record)
            due = self._take(record.occurred_at, everything=len(self._pending) >= self._max_pending)
        self._flush(due)

    def flush(self, now: datetime, *, everything: bool = False) -> int:
        """Write the tallies of minutes ended by ``now`` (all with ``everything``); return how many."""
        with self._lock:
            due = self._take(now, everything=everything)
        self._flush(due)
        return len(due)

    def _hold(self, key: _Key, record: AuditRecord) -> None:
        held = self._pending.get(key)
        self._pending[key] = record if held is None else _merged(held, record)
        if self._oldest is None or key[3] < self._oldest:
            self._oldest = key[3]

    def _take(self, now: datetime, *, everything: bool) -> list[AuditRecord]:
        """Remove and return the tallies due (the lock is held)."""
        if self._oldest is None or (not everything and now < self._oldest + MINUTE):
            return []  # the common case: the minutes held are still running
        ended = [key for key in self._pending if everything or now >= key[3] + MINUTE]
        due = [self._pending.pop(key) for key in ended]
        self._oldest = min((key[3] for key in self._pending), default=None)
        return due

    def _flush(self, due: list[AuditRecord]) -> None:
        if not due:
            return
        try:
            self._write(due)
        except Exception:
            self._hold_again(due)
            raise

    def _hold_again(self, records: list[AuditRecord]) -> None:
        """Keep tallies that could not be written for the next flush, as far as the bound allows."""
        lost = 0
        with self._lock:
            for record in records:
                key = _key(record)
                if key in self._pending or len(self._pending) < self._max_pending:
                    self._hold(key, record)
                else:
                    lost += record.count
        if lost:
            log.error("the audit trail lost %d refusals it could neither write nor hold", lost)
