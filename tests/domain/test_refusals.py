"""Refusal counts in memory: one tally per subject, operation, outcome and minute, written when the
minute is over or too many are held; what a failed write leaves is held again, within the bound."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.refusals import RefusalCounts
from app.store.audit import AuditRecord

START = datetime(2031, 5, 6, 7, 8, 0, tzinfo=UTC)


def _refusal(
    subject: str,
    at: datetime = START,
    *,
    address: str = "10.0.0.1",
    request: str = "r",
    outcome: str = "FORBIDDEN",
) -> AuditRecord:
    return AuditRecord(
        occurred_at=at,
        action="giftcardBlock",
        outcome=outcome,
        subject=subject,
        giftcard_id=None,
        field=None,
        request_id=request,
        client_address=address,
    )


class Table:
    """Stands for the audit table: keeps what is written, or fails while ``down``."""

    def __init__(self) -> None:
        self.rows: list[AuditRecord] = []
        self.down = False

    def write(self, records: Sequence[AuditRecord]) -> None:
        if self.down:
            raise RuntimeError("the database is unreachable")
        self.rows += records


def _counts(table: Table) -> list[tuple[str | None, str, int]]:
    return [(row.subject, row.outcome, row.count) for row in table.rows]


def test_a_tally_keeps_the_first_time_and_request_and_a_shared_address():
    table = Table()
    counts = RefusalCounts(table.write)
    counts.add(_refusal("a", START + timedelta(seconds=5), request="r1"))
    counts.add(_refusal("a", START + timedelta(seconds=9), request="r2"))
    counts.add(_refusal("b", START + timedelta(seconds=1), address="10.0.0.1"))
    counts.add(_refusal("b", START + timedelta(seconds=2), address="10.0.0.2"))
    assert counts.flush(START + timedelta(seconds=59)) == 0
    assert counts.flush(START + timedelta(minutes=1)) == 2
    first, second = table.rows
    assert (first.count, first.occurred_at, first.request_id, first.client_address) == (
        2,
        START + timedelta(seconds=5),
        "r1",
        "10.0.0.1",
    )
    assert (second.count, second.client_address) == (2, None)


def test_holding_too_many_tallies_writes_them_all_before_their_minute_is_over():
    table = Table()
    counts = RefusalCounts(table.write, max_pending=3)
    counts.add(_refusal("a"))
    counts.add(_refusal("b"))
    counts.add(_refusal("a"))
    assert table.rows == []
    counts.add(_refusal("c"))  # the third tally held
    assert _counts(table) == [("a", "FORBIDDEN", 2), ("b", "FORBIDDEN", 1), ("c", "FORBIDDEN", 1)]
    # and the same minute goes on in new tallies, which readers add up
    counts.add(_refusal("a"))
    counts.flush(START, everything=True)
    assert _counts(table)[-1] == ("a", "FORBIDDEN", 1)


def test_a_failed_write_holds_the_tallies_again_for_the_next_flush():
    table = Table()
    counts = RefusalCounts(table.write)
    counts.add(_refusal("a"))
    table.down = True
    with pytest.raises(RuntimeError):
        counts.add(_refusal("a", START + timedelta(minutes=1)))  # writes the ended minute: fails
    table.down = False
    counts.flush(START + timedelta(minutes=1))
    counts.flush(START, everything=True)
    assert _counts(table) == [("a", "FORBIDDEN", 1), ("a", "FORBIDDEN", 1)]
    assert [row.occurred_at for row in table.rows] == [START, START + timedelta(minutes=1)]


def test_what_a_failed_write_cannot_hold_again_is_logged_as_lost(caplog):
    table = Table()
    counts = RefusalCounts(table.write, max_pending=2)
    counts.add(_refusal("a", outcome="FORBIDDEN"))
    counts.add(_refusal("a", outcome="FORBIDDEN"))
    counts.add(_refusal("a", outcome="RATE_LIMITED"))  # reaches the bound: both written
    assert _counts(table) == [("a", "FORBIDDEN", 2), ("a", "RATE_LIMITED", 1)]
    # given a database that is down, and the bound reached again
    table.down = True
    counts.add(_refusal("b"))
    with caplog.at_level(logging.ERROR, logger="app.audit"), pytest.raises(RuntimeError):
        counts.add(_refusal("c"))
    # then the tallies are held again up to the bound, and nothing is lost yet
    assert "lost" not in caplog.text
    # when a third subject is refused while both are held
    with caplog.at_level(logging.ERROR, logger="app.audit"), pytest.raises(RuntimeError):
        counts.add(_refusal("d"))
    # then what did not fit is reported, and the rest is written once the database is back
    assert "lost 1 refusals" in caplog.text
    table.down = False
    counts.flush(START, everything=True)
    assert sorted(_counts(table)[2:]) == [("b", "FORBIDDEN", 1), ("c", "FORBIDDEN", 1)]
