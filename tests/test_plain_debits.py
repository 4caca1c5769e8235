"""Plain debits in one statement on PostgreSQL (app.domain.plain_debits): the same answer and the
same rows as the full path, nothing written when the call leaves a request to the full path, and
the card's holds and its code's state read after the card's lock, also when they change while the
call waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from app.domain.program_input import ProgramInput
from app.domain.trans_requests import TransRequest
from app.entities import CodeFormat, Transaction
from app.enums import CodeType, TransType
from app.errors import BadUserInputError, CardNotUsableError, GiftCardError, InsufficientFundsError
from app.policy import Principal
from app.services import build_services
from app.store.plain_debits import PlainDebitStore
from tests.conftest import add_store, fund, legacy_pin_hash, make_settings
from tests.test_concurrency import ledger_differences, scalar

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)

CODE, OTHER = "PLAINDEBIT0001", "PLAINDEBIT0002"
POS = Principal("pos", frozenset({"GiftCardTransUse", "UsePhysicalGiftCardCodes", "ListGiftCards"}))
KIOSK = Principal("kiosk", frozenset({"GiftCardTransUse", "UsePhysicalGiftCardCodes"}))


def _use(amount: str = "-1.25", code: str = CODE, **fields: Any) -> TransRequest:
    return TransRequest(TransType.USE, amount, code_type=CodeType.PHYSICAL, code=code, **fields)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether each plain call made in the test debited (True) or left the request (False)."""
    seen: list[bool] = []
    real = PlainDebitStore.debit

    def spy(self: PlainDebitStore, call: Any) -> Any:
        row = real(self, call)
        seen.append(row is not None)
        return row

    monkeypatch.setattr(PlainDebitStore, "debit", spy)
    yield seen


def _rows(engine: Engine, table: str, card_id: int, leave_out: tuple[str, ...]) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT * FROM {table} WHERE giftcard_id = :id ORDER BY id"), {"id": card_id}
        ).mappings()
        return [{k: v for k, v in row.items() if k not in leave_out} for row in rows]


def _balance(engine: Engine, card_id: int) -> int:
    return scalar(engine, "SELECT balance FROM giftcards WHERE id = :id", id=card_id)


def test_a_plain_debit_answers_and_writes_what_the_full_path_does(services, seed, calls):
    # given two cards alike, each with 20.00 and a hold of 3.00, and a third card
    plain_id, full_id = seed({CodeType.PHYSICAL: CODE}), seed({CodeType.PHYSICAL: OTHER})
    third_id = seed({CodeType.PHYSICAL: "PLAINDEBIT0003"})
    for card_id in (plain_id, full_id, third_id):
        fund(services.engine, card_id, 2000)
    for code in (CODE, OTHER):
        services.ledger.create(POS, _use("-3.00", code, authorize_only=True))
    details = {"source_id": "till-4", "ref_no": "r-77", "note": "lunch", "location_id": "store-9"}

    # when one is debited as a plain debit and the other on the full path
    plain = services.ledger.create(POS, _use("-1.25", CODE, **details))
    full = replace(services.ledger, plain=None).create(POS, _use("-1.25", OTHER, **details))

    # then the plain call debited, and the answers, ledger rows and audit rows differ only in
    # their ids, cards and times
    assert calls == [True]
    assert (plain.balance, plain.available_balance, plain.amount) == (1875, 1575, -125)
    assert _answer(plain) == _answer(full)
    mine = ("id", "giftcard_id", "code_id", "created_at", "settled_at", "hold_expires_at", "auth_code_hash")
    assert _rows(services.engine, "giftcard_transactions", plain_id, mine) == _rows(
        services.engine, "giftcard_transactions", full_id, mine
    )
    audit = ("id", "giftcard_id", "occurred_at")
    assert _rows(services.engine, "audit_events", plain_id, audit) == _rows(
        services.engine, "audit_events", full_id, audit
    )
    # each row names its card's code, and was settled when it was made
    code_of = "SELECT code_id FROM giftcard_transactions WHERE id = :id"
    code_id = "SELECT id FROM giftcard_codes WHERE giftcard_id = :id"
    for answer, card_id in ((plain, plain_id), (full, full_id)):
        assert scalar(services.engine, code_of, id=answer.id) == scalar(services.engine, code_id, id=card_id)
        assert answer.settled_at == answer.created_at
    assert (_balance(services.engine, plain_id), _balance(services.engine, third_id)) == (1875, 2000)
    assert ledger_differences(services.engine) == []


def _answer(answer: Transaction) -> dict[str, Any]:
    leave_out = ("id", "giftcard_id", "created_at", "settled_at")
    return {name: value for name, value in asdict(answer).items() if name not in leave_out}


def test_a_plain_debit_in_another_currency_takes_its_decimals(services, seed, calls):
    # given a card in yen and one in dinars
    yen, dinar = (
        seed({CodeType.PHYSICAL: CODE}, currency="JPY"),
        seed({CodeType.PHYSICAL: OTHER}, currency="BHD"),
    )
    fund(services.engine, yen, 5000)
    fund(services.engine, dinar, 5000)

    # when each is debited in its own decimals, and the yen card with decimals it does not have
    assert services.ledger.create(POS, _use("-150", CODE)).balance == 4850
    assert services.ledger.create(POS, _use("-1.234", OTHER)).balance == 3766
    with pytest.raises(GiftCardError, match="JPY allows at most 0 decimal places"):
        services.ledger.create(POS, _use("-1.50", CODE))

    # then the first two were plain, and the third was left to the full path, which refused it
    assert calls == [True, True, False]
    assert (_balance(services.engine, yen), _balance(services.engine, dinar)) == (4850, 3766)


def _pin_code(services: Any, seed: Callable[..., int]) -> int:
    return seed({CodeType.PHYSICAL: CODE}, pin="4321")


def _program_card(services: Any, seed: Callable[..., int]) -> int:
    card_id = seed({CodeType.PHYSICAL: CODE})
    given = ProgramInput(code="GC", name="promo", currency="USD", code_format=CodeFormat("GC", 16, True))
    program = services.programs.add(Principal("admin", frozenset({"ManagePrograms"})), given)
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET program_id = :p WHERE id = :id"), {"p": program.id, "id": card_id}
        )
    return card_id


def _blocked(services: Any, seed: Callable[..., int]) -> int:
    card_id = seed({CodeType.PHYSICAL: CODE})
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE giftcards SET state = 'BLOCKED' WHERE id = :id"), {"id": card_id})
    return card_id


def _window(column: str, when: datetime) -> Callable[[Any, Callable[..., int]], int]:
    def seeded(services: Any, seed: Callable[..., int]) -> int:
        card_id = seed({CodeType.PHYSICAL: CODE})
        with services.engine.begin() as connection:
            connection.execute(
                text(f"UPDATE giftcards SET {column} = :t WHERE id = :id"), {"t": when, "id": card_id}
            )
        return card_id

    return seeded


def _revoked(services: Any, seed: Callable[..., int]) -> int:
    return seed({CodeType.PHYSICAL: CODE}, revoked={CodeType.PHYSICAL})


def _expired_code(services: Any, seed: Callable[..., int]) -> int:
    return seed({CodeType.PHYSICAL: CODE}, expires={CodeType.PHYSICAL: date.today() - timedelta(days=1)})


def _in_two_stores(services: Any, seed: Callable[..., int]) -> int:
    add_store(services, "north")
    seed({CodeType.PHYSICAL: CODE}, store_id="north")
    return seed({CodeType.PHYSICAL: CODE})


NOW = datetime.now(UTC)
# How each card is made, and the error the full path answers a debit of 1.25 with (None: it debits).
NOT_PLAIN: dict[str, tuple[Callable[[Any, Callable[..., int]], int], type[GiftCardError] | None]] = {
    "code with a PIN, none given": (_pin_code, CardNotUsableError),
    "card of a program": (_program_card, None),
    "blocked card": (_blocked, CardNotUsableError),
    "card not usable yet": (_window("usable_from", NOW + timedelta(days=1)), CardNotUsableError),
    "card expired": (_window("expires_at", NOW - timedelta(days=1)), CardNotUsableError),
    "revoked code": (_revoked, CardNotUsableError),
    "expired code": (_expired_code, CardNotUsableError),
    "code in both of the caller's stores": (_in_two_stores, BadUserInputError),
}


@pytest.mark.parametrize("case", list(NOT_PLAIN))
def test_what_is_not_plain_is_left_to_the_full_path_with_nothing_written(services, seed, calls, case):
    # given a card funded with 20.00 that a plain debit does not cover, and another card
    make, refusal = NOT_PLAIN[case]
    card_id = make(services, seed)
    other_id = seed({CodeType.PHYSICAL: OTHER})
    with services.engine.begin() as connection:  # funded whatever its state
        connection.execute(
            text("UPDATE giftcards SET balance = 2000 WHERE id IN (:a, :b)"), {"a": card_id, "b": other_id}
        )
    before = scalar(services.engine, "SELECT count(*) FROM giftcard_transactions")

    # when it is debited by its code, by a caller of two stores
    caller = Principal("pos", POS.permissions, stores=frozenset({"default", "north"}))
    answer: Transaction | None = None
    if refusal is None:
        answer = services.ledger.create(caller, _use())
    else:
        with pytest.raises(refusal):
            services.ledger.create(caller, _use())

    # then the plain call wrote nothing, and the full path answered
    assert calls == [False]
    written = scalar(services.engine, "SELECT count(*) FROM giftcard_transactions") - before
    assert written == (0 if refusal else 1)
    assert _balance(services.engine, card_id) == (2000 if refusal else 1875)
    assert _balance(services.engine, other_id) == 2000
    if answer is not None:
        assert answer.balance == 1875


def test_not_enough_available_is_left_to_the_full_path(services, seed, calls):
    # given a card with 10.00 of which a hold takes 8.00
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    services.ledger.create(POS, _use("-8.00", authorize_only=True))

    # when 5.00 is debited, then 5.00 with a partial debit allowed, then 1.00 as a kiosk would
    with pytest.raises(InsufficientFundsError):
        services.ledger.create(POS, _use("-5.00"))
    partial = services.ledger.create(POS, _use("-5.00", allow_partial=True))
    with pytest.raises(CardNotUsableError):
        services.ledger.create(KIOSK, _use("-1.00"))

    # then the plain calls left all three, the full path refused the first and the third (hidden
    # from the kiosk) and took the 2.00 available for the second
    assert calls == [False, False, False]
    assert (partial.amount, partial.partial, partial.balance, partial.available_balance) == (
        -200,
        True,
        800,
        0,
    )
    assert _balance(services.engine, card_id) == 800


def test_a_code_outside_the_callers_store_is_not_debited(services, seed, calls):
    # given a card in the store north, and a caller of the default store only
    add_store(services, "north")
    card_id = seed({CodeType.PHYSICAL: CODE}, store_id="north")
    fund(services.engine, card_id, 1000)
    caller = Principal("pos", POS.permissions, stores=frozenset({"default"}))

    # when the caller debits its code
    with pytest.raises(GiftCardError):
        services.ledger.create(caller, _use())

    # then nothing was found, nor debited
    assert calls == [False]
    assert _balance(services.engine, card_id) == 1000


def test_an_idempotency_key_skips_the_plain_call(services, seed, calls):
    # given a funded card
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)

    # when it is debited with an idempotency key, twice
    first = services.ledger.create(POS, _use(), "key-1")
    again = services.ledger.create(POS, _use(), "key-1")

    # then no plain call was made; the key answered its retry as the first time
    assert calls == []
    assert again == first
    assert _balance(services.engine, card_id) == 875


def _failures(engine: Engine, card_id: int) -> int:
    return scalar(
        engine, "SELECT failed_pin_attempts FROM giftcard_codes WHERE giftcard_id = :id", id=card_id
    )


def test_a_right_pin_is_plain_and_a_wrong_one_left_to_the_full_path(services, seed, calls):
    # given a funded card whose code has a PIN, and another card
    card_id = seed({CodeType.PHYSICAL: CODE}, pin="4321")
    other_id = seed({CodeType.PHYSICAL: OTHER}, pin="4321")
    fund(services.engine, card_id, 1000)
    fund(services.engine, other_id, 1000)

    # when it is debited with its PIN, then with a wrong one, then with its PIN again
    right = services.ledger.create(POS, _use(pin="4321"))
    with pytest.raises(CardNotUsableError, match="wrong or missing PIN"):
        services.ledger.create(POS, _use(pin="0000"))
    failed = _failures(services.engine, card_id)
    again = services.ledger.create(POS, _use(pin="4321"))
    after = services.ledger.create(POS, _use(pin="4321"))

    # then the right PIN was one plain debit; the call left the wrong one, and the full path
    # counted it; it left the next right one too, on a run of wrong ones, and the full path ended
    # the run; and the one after that was plain again
    assert calls == [True, False, False, True]
    assert failed == 1
    assert _failures(services.engine, card_id) == 0
    assert [answer.balance for answer in (right, again, after)] == [875, 750, 625]
    assert (_balance(services.engine, card_id), _balance(services.engine, other_id)) == (625, 1000)
    assert ledger_differences(services.engine) == []


def test_a_locked_code_refuses_even_its_right_pin(services, seed, calls):
    # given a funded card whose code is locked after wrong PINs
    card_id = seed({CodeType.PHYSICAL: CODE}, pin="4321")
    fund(services.engine, card_id, 1000)
    for _ in range(services.settings.pin_max_failures):
        with pytest.raises(CardNotUsableError):
            services.ledger.create(POS, _use(pin="0000"))
    calls.clear()

    # when the right PIN is sent
    with pytest.raises(CardNotUsableError, match="locked after too many wrong PINs"):
        services.ledger.create(POS, _use(pin="4321"))

    # then the call left it, and the full path refused it: the code is locked
    assert calls == [False]
    assert _balance(services.engine, card_id) == 1000


def test_an_argon2_pin_is_left_to_the_full_path(services, seed, calls):
    # given a funded card whose PIN an older version stored as argon2
    card_id = seed({CodeType.PHYSICAL: CODE}, pin="4321")
    fund(services.engine, card_id, 1000)
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcard_codes SET pin_hash = :value, pin_key_ids = NULL WHERE giftcard_id = :id"),
            {"value": legacy_pin_hash(services.settings, "4321"), "id": card_id},
        )

    # when it is debited with its PIN, twice
    first = services.ledger.create(POS, _use(pin="4321"))
    second = services.ledger.create(POS, _use(pin="4321"))

    # then the first made no call (the full path checked it, and stored it keyed), the second was plain
    assert calls == [True]
    assert (first.balance, second.balance) == (875, 750)


def test_a_pin_changed_after_it_was_checked_is_left_to_the_full_path(services, seed, monkeypatch):
    # given a funded card whose code has a PIN, changed to another between the code's read and the
    # call (the read returns the PIN stored before)
    card_id = seed({CodeType.PHYSICAL: CODE}, pin="4321")
    fund(services.engine, card_id, 1000)
    real, debited = PlainDebitStore.debit, []

    def changed_first(self: PlainDebitStore, call: Any) -> Any:
        stored = services.pins.hash(call.checked.code_id, "9999")
        with services.engine.begin() as connection:
            connection.execute(
                text("UPDATE giftcard_codes SET pin_hash = :h, pin_key_ids = :k WHERE id = :id"),
                {"h": stored.value, "k": stored.key_ids, "id": call.checked.code_id},
            )
        row = real(self, call)
        debited.append(row is not None)
        return row

    monkeypatch.setattr(PlainDebitStore, "debit", changed_first)

    # when it is debited with the PIN it had
    with pytest.raises(CardNotUsableError, match="wrong or missing PIN"):
        services.ledger.create(POS, _use(pin="4321"))

    # then the call saw the new PIN and wrote nothing; the full path refused the old one, counted
    assert debited == [False]
    assert _balance(services.engine, card_id) == 1000
    assert _failures(services.engine, card_id) == 1


@pytest.mark.settings(group_commit=False)
@pytest.mark.parametrize("meanwhile", ["hold", "revoke"])
def test_what_commits_while_the_call_waits_for_the_card_is_seen(
    services, seed, calls, monkeypatch, meanwhile
):
    # given a card with 10.00, and another request that holds its lock a moment while it places a
    # hold of 8.00 on it, or one of 0.01 and revokes its code
    from app.domain import ledger as ledger_domain

    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    written, write = threading.Event(), ledger_domain.write_entry

    def slow_write(*args: Any, **kwargs: Any) -> Any:
        row = write(*args, **kwargs)
        if meanwhile == "revoke":
            session = args[0]
            session.execute(
                text("UPDATE giftcard_codes SET revoked_at = now() WHERE giftcard_id = :id"), {"id": card_id}
            )
        written.set()
        time.sleep(0.5)
        return row

    monkeypatch.setattr(ledger_domain, "write_entry", slow_write)
    held = "-8.00" if meanwhile == "hold" else "-0.01"  # what a stale code would leave available
    hold = TransRequest(TransType.USE, held, giftcard_id=str(card_id), authorize_only=True)
    holder = threading.Thread(target=services.ledger.create, args=(POS, hold))
    holder.start()
    assert written.wait(10)

    # when a debit of 5.00 by the code arrives meanwhile, and waits for the card
    started = time.monotonic()
    with pytest.raises((InsufficientFundsError, CardNotUsableError)) as refused:
        services.ledger.create(POS, _use("-5.00"))
    holder.join(10)

    # then the call waited, read what committed meanwhile, and left the debit, which the full path
    # refused: 2.00 available, or the code revoked
    assert time.monotonic() - started > 0.3
    assert calls == [False]
    expected = InsufficientFundsError if meanwhile == "hold" else CardNotUsableError
    assert type(refused.value) is expected
    assert _balance(services.engine, card_id) == 1000
    assert ledger_differences(services.engine) == []


def test_the_setting_turns_plain_debits_off(database_url, tmp_path):
    services = build_services(make_settings(database_url, tmp_path, one_statement_debits=False))
    try:
        assert services.ledger.plain is None
    finally:
        services.engine.dispose()


def test_at_the_edges_a_debit_is_still_plain(services, seed, calls):
    # given a card in its window, whose code expires today, with 10.00 of which a hold takes 3.00
    card_id = seed({CodeType.PHYSICAL: CODE}, expires={CodeType.PHYSICAL: datetime.now(UTC).date()})
    fund(services.engine, card_id, 1000)
    with services.engine.begin() as connection:
        window = {
            "start": NOW - timedelta(hours=1),
            "end": datetime.now(UTC) + timedelta(hours=1),
            "id": card_id,
        }
        connection.execute(
            text("UPDATE giftcards SET usable_from = :start, expires_at = :end WHERE id = :id"), window
        )
    services.ledger.create(POS, _use("-3.00", authorize_only=True))

    # when all that is available is debited
    answer = services.ledger.create(POS, _use("-7.00"))

    # then it was one plain debit, down to nothing available
    assert calls == [True]
    assert (answer.balance, answer.available_balance) == (300, 0)
    assert ledger_differences(services.engine) == []


def test_a_card_locked_too_long_is_unavailable_and_nothing_is_written(services, seed):
    # given plain debits on connections that wait 0.2 s for a row lock, and a card another
    # transaction keeps locked
    from app import db
    from app.domain.plain_debits import PlainDebits
    from app.errors import UnavailableError

    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    impatient = db.create_db_engine(services.settings, lock_wait_seconds=0.2)
    plain = PlainDebits(PlainDebitStore(impatient), services.vault, services.pins, services.ledger.runner)
    ledger = replace(services.ledger, plain=plain)
    holder = services.engine.connect()
    try:
        holder.execute(text("SELECT id FROM giftcards WHERE id = :id FOR UPDATE"), {"id": card_id})

        # when the card is debited by its code
        with pytest.raises(UnavailableError) as busy:
            ledger.create(POS, _use())
    finally:
        holder.rollback()
        holder.close()
        impatient.dispose()

    # then the answer is the full path's for a lock waited for too long, and nothing was written
    assert busy.value.message == db.BUSY
    assert _balance(services.engine, card_id) == 1000
    assert ledger_differences(services.engine) == []


def test_with_tracing_on_a_plain_debit_goes_through_sqlalchemys_events_and_commits(services, seed, calls):
    # given an engine traced as app.tracing sets it up, and a funded card
    from sqlalchemy import event

    from app.db import TRACED

    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    services.engine.update_execution_options(**{TRACED: True})  # this test's engine only
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        seen.append(sql)

    event.listen(services.engine, "after_cursor_execute", statement)
    try:
        # when it is debited by its code
        answer = services.ledger.create(POS, _use())
    finally:
        event.remove(services.engine, "after_cursor_execute", statement)

    # then the call went through the engine's events (where spans are made), and it committed
    assert calls == [True]
    assert [sql for sql in seen if "giftcard_plain_debit(" in sql] != []
    assert answer.balance == _balance(services.engine, card_id) == 875


def test_a_caller_of_every_store_debits_a_code_in_any_of_them(services, seed, calls):
    # given a funded card in the store north, and a caller of every store
    add_store(services, "north")
    card_id = seed({CodeType.PHYSICAL: CODE}, store_id="north")
    fund(services.engine, card_id, 1000)
    everywhere = Principal("hq", POS.permissions | {"AllStores"})

    # when it debits the code
    answer = services.ledger.create(everywhere, _use())

    # then one plain call found it, in its store
    assert calls == [True]
    assert (answer.store_id, answer.balance) == ("north", 875)
