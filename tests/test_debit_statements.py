"""How many round trips one debit by code (and one capture) makes to the database: a regression guard
for the money path, on SQLite and PostgreSQL.

Counted where the driver is called, so that nothing is missed: every statement of any connection
(the code lookup's read on a raw pooled connection too), and on PostgreSQL the BEGIN, COMMIT and
ROLLBACK that psycopg sends by itself and the pool's pings; on SQLite every commit and rollback.
Statements psycopg sends in one pipeline are one round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event

from app.domain.trans_requests import TransRequest
from app.enums import CodeType, TransType
from app.errors import CardNotUsableError, LimitExceededError
from app.policy import Principal
from tests.conftest import fund
from tests.test_concurrency import scalar

CODE, PIN = "STMTCOUNT0001", "4321"
POS = Principal("pos", frozenset({"GiftCardTransUse", "UsePhysicalGiftCardCodes"}))


@contextmanager
def round_trips(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the driver sent to the database in the block, in order (the start of each statement)."""
    seen: list[str] = []

    def spy(owner: Any, name: str, text: Any) -> None:
        real = getattr(owner, name)

        def sent(self: Any, *args: Any, **kwargs: Any) -> Any:
            said = text(args)
            pipelined = getattr(getattr(self, "_conn", self), "_pipeline", None) is not None
            if pipelined and said != "PIPELINE":
                seen[-1] += f" | {said}"  # sent in the pipeline begun last: one round trip for all
            else:
                seen.append(said)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, sent)

    with monkeypatch.context() as patches:
        monkeypatch = patches
        if engine.dialect.name == "postgresql":
            from psycopg import _connection_base, _cursor_base, _pipeline  # where psycopg sends

            spy(_cursor_base.BaseCursor, "_execute_send", lambda args: bytes(args[0].query).decode()[:40])
            spy(_connection_base.BaseConnection, "_exec_command", lambda args: bytes(args[0]).decode())
            spy(_pipeline.Pipeline, "__enter__", lambda _args: "PIPELINE")
        else:
            from app.db import _SQLiteConnection, _SQLiteCursor

            spy(_SQLiteCursor, "execute", lambda args: args[0][:40])
            spy(_SQLiteConnection, "commit", lambda _args: "COMMIT")
            spy(_SQLiteConnection, "rollback", lambda _args: "ROLLBACK")
        yield seen


def _debit(pin: str | None = None) -> TransRequest:
    return TransRequest(TransType.USE, "-0.01", code_type=CodeType.PHYSICAL, code=CODE, pin=pin)


# Round trips per debit, by database: (no key nor PIN, with a key, with a PIN, then no key nor PIN
# and with a PIN on the full path). On PostgreSQL a plain debit is one call
# (app.domain.plain_debits), after the code's read when a PIN is checked against it; on the full
# path without a key the move takes the COMMIT with it (app.store.moves.last_write), with a PIN too;
# with a key, the key's answer is sealed after it. SQLite's ROLLBACKs are the pool's reset of a
# connection handed back with no transaction open.
EXPECTED = {"sqlite": (10, 16, 10, 10, 10), "postgresql": (1, 8, 2, 3, 3)}


@pytest.mark.parametrize(
    ("case", "pin", "key"),
    [(0, None, None), (1, None, "k-1"), (2, PIN, None), (3, None, None), (4, PIN, None)],
)
def test_a_debit_by_code_makes_a_fixed_number_of_round_trips(services, seed, monkeypatch, case, pin, key):
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=pin)
    other_id = seed({CodeType.PHYSICAL: "STMTCOUNT0002"})
    fund(services.engine, card_id, 500)
    fund(services.engine, other_id, 500)
    ledger = replace(services.ledger, plain=None) if case >= 3 else services.ledger
    ledger.create(POS, _debit(pin), key and "warm-up")  # statements compiled, pool filled

    with round_trips(services.engine, monkeypatch) as seen:
        answer = ledger.create(POS, _debit(pin), key)

    assert answer.balance == 498
    database = services.engine.dialect.name
    assert len(seen) == EXPECTED[database][case], seen
    assert _balances(services.engine) == {card_id: 498, other_id: 500}  # the other card is untouched
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


def test_a_debit_runs_statements_prepared_once_with_nothing_compiled_again(services, seed, monkeypatch):
    from sqlalchemy.engine.default import NO_CACHE_KEY

    from app.store import prepared

    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 500)
    services.ledger.create(POS, _debit(), None)  # statements built and compiled
    compiled: list[object] = []
    real_init = prepared.Prepared.__init__

    def compiling(self: Any, statement: Any, target: Any) -> None:
        compiled.append(statement)
        real_init(self, statement, target)

    monkeypatch.setattr(prepared.Prepared, "__init__", compiling)
    through_sqlalchemy: list[object] = []

    def seen(_conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool) -> None:
        through_sqlalchemy.append(context.cache_hit)

    event.listen(services.engine, "after_cursor_execute", seen)
    try:
        answer = services.ledger.create(POS, _debit(), None)
    finally:
        event.remove(services.engine, "after_cursor_execute", seen)
    assert answer.balance == 498
    assert compiled == []  # every statement prepared by the first debit
    # SQLAlchemy runs nothing of the debit but SQLite's BEGIN IMMEDIATE (plain SQL, no cache key)
    expected = [NO_CACHE_KEY] if services.engine.dialect.name == "sqlite" else []
    assert through_sqlalchemy == expected


def test_a_capture_locks_its_card_once_and_reads_its_holds_once(services, seed, monkeypatch):
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 500)
    pos = Principal("pos", POS.permissions | {"ListGiftCards"})
    hold = TransRequest(TransType.USE, "-1.00", code_type=CodeType.PHYSICAL, code=CODE, authorize_only=True)
    first, second = services.ledger.create(pos, hold), services.ledger.create(pos, hold)
    services.ledger.capture(pos, str(first.id))  # statements built and compiled

    with round_trips(services.engine, monkeypatch) as seen:
        captured = services.ledger.capture(pos, str(second.id), "-0.40")

    assert (captured.amount, captured.balance, captured.available_balance) == (-40, 360, 360)
    statements = [sql for sent in seen for sql in sent.split(" | ")]  # a pipeline's one by one
    locks = [sql for sql in statements if sql.startswith("SELECT giftcards.")]
    holds = [sql for sql in statements if "sum(" in sql.lower()]
    assert (len(locks), len(holds)) == (1, 1), seen


def test_a_credit_refused_at_the_ceiling_after_a_right_pin_keeps_the_wrong_pins_counted(services, seed):
    # given a card with a PIN one cent under the ceiling, one wrong PIN counted, and another card
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    other_id = seed({CodeType.PHYSICAL: "STMTCOUNT0002"})
    ceiling = services.settings.max_balance * 100  # in cents
    fund(services.engine, card_id, ceiling - 1)
    fund(services.engine, other_id, 500)
    pos = Principal("pos", POS.permissions | {"GiftCardTransAdjust", "ListGiftCards"})
    with pytest.raises(CardNotUsableError):
        services.ledger.create(pos, _debit("0000"))

    # when an adjustment with the right PIN would take it over the ceiling (a prebuilt move; a
    # load's has a condition of its own, its daily limit)
    credit = TransRequest(TransType.ADJUST, "0.02", code_type=CodeType.PHYSICAL, code=CODE, pin=PIN)
    with pytest.raises(LimitExceededError):
        services.ledger.create(pos, credit)

    # then nothing of it is kept: not the credit, nor the right PIN's end of the run of wrong ones
    # (its COMMIT is not sent with the move, which the ceiling refused)
    assert _balances(services.engine) == {card_id: ceiling - 1, other_id: 500}
    wrong = "SELECT failed_pin_attempts FROM giftcard_codes WHERE giftcard_id = :id"
    assert scalar(services.engine, wrong, id=card_id) == 1
    assert (
        scalar(services.engine, "SELECT count(*) FROM giftcard_transactions WHERE trans_type = 'ADJUST'") == 0
    )


@pytest.mark.parametrize("written_after", ["key", "token"])
def test_what_a_debit_writes_after_its_move_commits_with_it(services, seed, monkeypatch, written_after):
    # given a funded card, and a debit by idempotency key or by payment token, which write after the
    # move (the key's answer, the token used up)
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 500)
    pos = Principal("pos", POS.permissions | {"FindGiftCardByCode"})
    seen: list[int] = []
    elsewhere = create_engine(services.engine.url)  # none of the server's pool, nor its writer's turn
    owner: Any
    if written_after == "key":
        from app.domain.idempotency import Idempotency

        owner, name, request, key = Idempotency, "seal", _debit(), "k-after"
    else:
        from app.domain.payment_tokens import TokenRequest
        from app.store import payment_tokens

        token = services.payment_tokens.tokenize(pos, TokenRequest(CODE, CodeType.PHYSICAL)).token
        owner, name = payment_tokens, "use_token"
        request, key = TransRequest(TransType.USE, "-0.01", token=token), None
    real = getattr(owner, name)

    def looked_at_from_elsewhere(*args: Any, **kwargs: Any) -> Any:
        seen.append(_balances(elsewhere)[card_id])  # while the transaction writes
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, looked_at_from_elsewhere)

    # when it runs
    try:
        answer = services.ledger.create(pos, request, key)
    finally:
        elsewhere.dispose()

    # then until that last write the debit was not committed, and then it was
    assert (answer.balance, seen, _balances(services.engine)[card_id]) == (499, [500], 499)


def _balances(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        return dict(connection.exec_driver_sql("SELECT id, balance FROM giftcards").all())
