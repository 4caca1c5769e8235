"""How many statements one debit by code sends to the database: a regression guard for the money
path's round trips (each statement is one, and the commit one more), on SQLite and PostgreSQL.

Counted with SQLAlchemy's ``before_cursor_execute`` event on the engine: every statement any
connection of the pool runs, the code lookup's read and the write transaction's alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

from app.domain.ledger import TransRequest
from app.enums import CodeType, TransType
from app.policy import Principal
from tests.conftest import fund

CODE, PIN = "STMTCOUNT0001", "4321"
POS = Principal("pos", frozenset({"GiftCardTransUse", "UsePhysicalGiftCardCodes"}))


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL of every statement run on ``engine`` in the block, in order."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _debit(pin: str | None = None) -> TransRequest:
    return TransRequest(TransType.USE, "-0.01", code_type=CodeType.PHYSICAL, code=CODE, pin=pin)


# Statements per debit, by database: (no key nor PIN, with a key, with a PIN).
EXPECTED = {"sqlite": (7, 12, 7), "postgresql": (4, 8, 4)}


@pytest.mark.parametrize(("case", "pin", "key"), [(0, None, None), (1, None, "k-1"), (2, PIN, None)])
def test_a_debit_by_code_runs_a_fixed_number_of_statements(services, seed, case, pin, key):
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=pin)
    other_id = seed({CodeType.PHYSICAL: "STMTCOUNT0002"})
    fund(services.engine, card_id, 500)
    fund(services.engine, other_id, 500)
    services.ledger.create(POS, _debit(pin), key and "warm-up")  # statements compiled, pool filled

    with statements(services.engine) as seen:
        answer = services.ledger.create(POS, _debit(pin), key)

    assert answer.balance == 498
    database = services.engine.dialect.name
    assert len(seen) == EXPECTED[database][case], seen
    with services.engine.connect() as connection:
        balances = dict(connection.exec_driver_sql("SELECT id, balance FROM giftcards").all())
    assert balances == {card_id: 498, other_id: 500}  # the other card is untouched
    with services.engine.connect() as connection:
        entries = connection.exec_driver_sql(
            "SELECT giftcard_id, amount, balance_before, balance_after FROM giftcard_transactions "
            "WHERE amount < 0 ORDER BY balance_before DESC"
        ).all()
        events = connection.exec_driver_sql(
            "SELECT giftcard_id, action, outcome, subject FROM audit_events ORDER BY id"
        ).all()
    # each debit: one ledger row and one audit event, both of the card debited
    assert [tuple(row) for row in entries] == [(card_id, -1, 500, 499), (card_id, -1, 499, 498)]
    assert [tuple(row) for row in events] == [(card_id, "giftcardTransAdd", "OK", "pos")] * 2


def test_a_debit_binds_prebuilt_statements_that_the_compiled_cache_answers(services, seed):
    from sqlalchemy.engine.default import CACHE_HIT, NO_CACHE_KEY

    from app.store import moves

    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 500)
    services.ledger.create(POS, _debit(), None)  # statements built and compiled
    hits: list[object] = []

    def seen(_conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool) -> None:
        hits.append(context.cache_hit)

    built = moves._statement.cache_info().misses, moves._update.cache_info().misses
    event.listen(services.engine, "after_cursor_execute", seen)
    try:
        answer = services.ledger.create(POS, _debit(), None)
    finally:
        event.remove(services.engine, "after_cursor_execute", seen)
    assert answer.balance == 498
    # nothing built again, and every statement's compiled form came from the cache (plain SQL
    # such as SQLite's BEGIN has no cache key)
    assert (moves._statement.cache_info().misses, moves._update.cache_info().misses) == built
    assert hits.count(CACHE_HIT) >= 3, hits
    assert all(hit in (CACHE_HIT, NO_CACHE_KEY) for hit in hits), hits
