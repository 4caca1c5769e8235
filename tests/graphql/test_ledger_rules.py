"""giftcardTransAdd's card and code rules at their edges: the instant a window opens or closes,
a code revoked while a request is on its way, a locked PIN, a ledger that is off, and the fields
a transaction answers with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.domain import addressing
from app.domain import ledger as ledger_module
from app.enums import CodeType
from app.store import idempotency as key_store
from app.store import ledger as ledger_store
from tests.conftest import answered, fund, gql, legacy_pin_hash

TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) {
  id status amount balance authorizedAmount sourceId refNo createdAt } }"""
CAPTURE = """mutation C($id: ID!) { giftcardTransCapture(id: $id) { id status balance createdAt } }"""
CODE, PIN = "RULESCODE001", "2468"


@pytest.fixture
def card(seed, services):
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    return card_id


def _debit(client, token, amount="-1.00", **extra):
    trans = {"transType": "USE", "amount": amount, "codeType": "PHYSICAL", "code": CODE, "pin": PIN, **extra}
    return gql(client, TRANS, {"trans": trans}, token=token)


def _refusal(body) -> tuple[str, str | None, str]:
    (error,) = body["errors"]
    return error["extensions"]["code"], error["extensions"].get("field"), error["message"]


def _ok(body, name="giftcardTransAdd"):
    return answered(body, name)


def _set(services, sql, **params):
    with services.engine.begin() as connection:
        connection.execute(text(sql), params)


def _freeze(monkeypatch, instant):
    """The ledger's clock stops at ``instant``."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant

    monkeypatch.setattr(ledger_module, "datetime", Frozen)


INSTANT = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
# A debit by code as served (on PostgreSQL first as one statement, app.domain.plain_debits) and on
# the full path, where the instants below are checked in Python.
PATHS = pytest.mark.parametrize(
    "path", ["as served", pytest.param("full path", marks=pytest.mark.settings(one_statement_debits=False))]
)


# --- windows open and close at their instant -----------------------------------------------------


@PATHS
def test_a_card_is_usable_from_the_instant_its_window_opens(client, admin, card, services, monkeypatch, path):
    _set(services, "UPDATE giftcards SET usable_from = :t", t=INSTANT)
    _freeze(monkeypatch, INSTANT - timedelta(microseconds=1))
    assert _refusal(_debit(client, admin)) == ("CARD_NOT_USABLE", None, "the card is not usable yet")

    _freeze(monkeypatch, INSTANT)
    assert _ok(_debit(client, admin))["balance"] == "9.00"


def test_a_card_is_not_usable_from_the_instant_it_expires(client, admin, card, services, monkeypatch):
    _set(services, "UPDATE giftcards SET expires_at = :t", t=INSTANT)
    _freeze(monkeypatch, INSTANT - timedelta(microseconds=1))
    assert _ok(_debit(client, admin, authorizeOnly=True))["status"] == "AUTHORIZED"

    _freeze(monkeypatch, INSTANT)
    assert _refusal(_debit(client, admin)) == ("CARD_NOT_USABLE", None, "the card has expired")


@PATHS
def test_a_pin_lock_ends_at_its_instant(client, admin, card, services, monkeypatch, path):
    _set(services, "UPDATE giftcard_codes SET pin_locked_until = :t", t=INSTANT)
    _freeze(monkeypatch, INSTANT - timedelta(microseconds=1))
    code, field, message = _refusal(_debit(client, admin))
    assert (code, field) == ("CARD_NOT_USABLE", "pin")
    assert message.startswith("pin: locked after too many wrong PINs until 2031-03-04T05:06:07")
    assert message.endswith("; giftcardEdit with unlockPhysicalPin ends it")

    _freeze(monkeypatch, INSTANT)
    assert _ok(_debit(client, admin))["balance"] == "9.00"


# --- a code revoked while the request is on its way ----------------------------------------------


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_a_code_revoked_after_addressing_is_refused_under_the_lock(
    client, mint, card, services, monkeypatch, trusted
):
    # given a request that found the code live, and a revocation that lands before the card is locked
    real = ledger_store.LedgerStore.live_codes

    def found_then_revoked(*args, **kwargs):
        found = real(*args, **kwargs)
        _set(services, "UPDATE giftcard_codes SET revoked_at = CURRENT_TIMESTAMP")
        return found

    monkeypatch.setattr(ledger_store.LedgerStore, "live_codes", found_then_revoked)
    permissions = ["UsePhysicalGiftCardCodes", "GiftCardTransUse", *(["ListGiftCards"] if trusted else [])]

    body = _debit(client, mint(permissions=permissions))

    # then nothing is debited, and only a trusted caller is told why
    expected = (
        ("CARD_NOT_USABLE", "code", "code: the code was revoked")
        if trusted
        else ("CARD_NOT_USABLE", None, addressing.UNUSABLE)
    )
    assert _refusal(body) == expected
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT balance FROM giftcards")).scalar_one() == 1000


# --- captures on a ledger that is off, and of what is not open -----------------------------------


def test_a_capture_never_overdraws_even_when_the_balance_fell_below_its_hold(client, admin, card, services):
    # given a hold of 4.00, and a stored balance since set to 3.00 behind the ledger's back
    hold = _ok(_debit(client, admin, "-4.00", authorizeOnly=True))
    _set(services, "UPDATE giftcards SET balance = 300")

    # then the capture is refused as insufficient funds, and the balance stays
    body = gql(client, CAPTURE, {"id": hold["id"]}, token=admin)
    assert _refusal(body) == ("INSUFFICIENT_FUNDS", "amount", "amount: more than the balance")
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT balance FROM giftcards")).scalar_one() == 300


def test_a_completed_transaction_cannot_be_captured(client, admin, card):
    done = _ok(_debit(client, admin))

    body = gql(client, CAPTURE, {"id": done["id"]}, token=admin)

    assert _refusal(body) == ("CONFLICT", "id", "id: the transaction is COMPLETED, not AUTHORIZED")


# --- what a transaction answers with -------------------------------------------------------------


def test_a_hold_answers_with_its_references_and_keeps_its_creation_time(client, admin, card):
    hold = _ok(_debit(client, admin, "-2.50", authorizeOnly=True, sourceId="POS-7", refNo="R-77"))
    assert (hold["authorizedAmount"], hold["sourceId"], hold["refNo"]) == ("-2.50", "POS-7", "R-77")
    assert datetime.fromisoformat(hold["createdAt"]).utcoffset() == timedelta(0)

    done = _ok(gql(client, CAPTURE, {"id": hold["id"]}, token=admin), "giftcardTransCapture")

    assert done["createdAt"] == hold["createdAt"]


def test_the_smallest_credit_activates_a_pending_card(client, admin, seed, services):
    card_id = seed({CodeType.PHYSICAL: "RULESCODE002"})

    trans = {"transType": "ADD", "amount": "0.01", "giftcardId": str(card_id)}
    assert _ok(gql(client, TRANS, {"trans": trans}, token=admin))["balance"] == "0.01"

    with services.engine.connect() as connection:
        state = connection.execute(text("SELECT state FROM giftcards WHERE id = :id"), {"id": card_id})
        assert state.scalar_one() == "ACTIVE"


# --- PINs and code expiry, as a trusted caller is told ---------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["keyed PIN", "argon2 PIN"])
@pytest.mark.parametrize("pin", ["1357", None], ids=["wrong", "missing"])
def test_a_wrong_or_missing_pin_is_refused_by_name(client, admin, card, services, pin, legacy):
    if legacy:  # stored by an older version
        _set(
            services,
            "UPDATE giftcard_codes SET pin_hash = :value, pin_key_ids = NULL",
            value=legacy_pin_hash(services.settings, PIN),
        )

    body = _debit(client, admin, pin=pin)

    assert _refusal(body) == ("CARD_NOT_USABLE", "pin", "pin: wrong or missing PIN")
    with services.engine.connect() as connection:
        failed = connection.execute(text("SELECT failed_pin_attempts FROM giftcard_codes")).scalar_one()
    assert failed == (0 if pin is None else 1)  # a missing PIN is a client bug, not a guess


@PATHS
def test_a_code_is_usable_through_its_last_day(client, admin, card, services, monkeypatch, path):
    _freeze(monkeypatch, INSTANT)
    _set(services, "UPDATE giftcard_codes SET expires_on = :d", d=INSTANT.date())
    assert _ok(_debit(client, admin))["balance"] == "9.00"

    _set(services, "UPDATE giftcard_codes SET expires_on = :d", d=INSTANT.date() - timedelta(days=1))
    assert _refusal(_debit(client, admin)) == ("CARD_NOT_USABLE", "code", "code: the code has expired")


# --- addressing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trans", "refusal"),
    [
        (
            {"giftcardId": "1", "codeType": "PHYSICAL", "code": CODE},
            ("BAD_USER_INPUT", "trans", "trans: give codeType and code, giftcardId, or token"),
        ),
        ({}, ("BAD_USER_INPUT", "trans", "trans: give codeType and code, giftcardId, or token")),
        ({"giftcardId": "1", "pin": PIN}, ("BAD_USER_INPUT", "pin", "pin: only allowed with a code")),
        ({"code": CODE}, ("BAD_USER_INPUT", "codeType", "codeType: give both codeType and code")),
        ({"codeType": "PHYSICAL"}, ("BAD_USER_INPUT", "code", "code: give both codeType and code")),
        (
            {"codeType": "EXTERNAL", "code": CODE},
            ("FORBIDDEN", "codeType", "the token lacks the UseExternalGiftCardCodes permission"),
        ),
    ],
    ids=["both", "neither", "pin by id", "code alone", "code type alone", "type not usable"],
)
def test_addressing_refusals_name_the_field(client, mint, card, trans, refusal):
    token = mint(permissions=["ListGiftCards", "UsePhysicalGiftCardCodes", "GiftCardTransUse"])

    body = gql(client, TRANS, {"trans": {"transType": "USE", "amount": "-1.00", **trans}}, token=token)

    assert _refusal(body) == refusal


def test_a_malformed_card_id_names_the_field(client, admin, card):
    body = gql(
        client, TRANS, {"trans": {"transType": "USE", "amount": "-1.00", "giftcardId": "card-1"}}, token=admin
    )

    code, field, message = _refusal(body)
    assert (code, field) == ("BAD_USER_INPUT", "giftcardId") and message.startswith("giftcardId: ")


def test_an_unknown_code_is_not_found_for_a_trusted_caller(client, admin, card):
    body = _debit(client, admin, code="RULESCODE999")

    assert _refusal(body) == ("NOT_FOUND", "code", "code: no live code of that type")


# --- partial debits ------------------------------------------------------------------------------

PARTIAL = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) {
  amount balance availableBalance partial } }"""


def _partial(client, token, amount, **extra):
    trans = {"transType": "USE", "amount": amount, "codeType": "PHYSICAL", "code": CODE, "pin": PIN, **extra}
    return gql(client, PARTIAL, {"trans": trans}, token=token)


def test_a_debit_within_the_available_balance_is_not_partial(client, admin, card):
    assert _ok(_partial(client, admin, "-1.00")) == {
        "amount": "-1.00",
        "balance": "9.00",
        "availableBalance": "9.00",
        "partial": False,
    }
    assert _ok(_partial(client, admin, "-1.00", allowPartial=True))["partial"] is False
    assert _ok(_partial(client, admin, "-1.00", authorizeOnly=True))["partial"] is False


def test_a_partial_debit_takes_what_the_holds_leave(client, admin, card):
    _ok(_partial(client, admin, "-6.00", authorizeOnly=True))

    part = _ok(_partial(client, admin, "-5.00", allowPartial=True))

    assert part == {"amount": "-4.00", "balance": "6.00", "availableBalance": "0.00", "partial": True}


def test_a_debit_by_card_id_is_held_to_what_the_holds_leave(client, admin, card, services):
    # given $10.00 on the card, $6.00 of it held
    _ok(_partial(client, admin, "-6.00", authorizeOnly=True))
    # when $5.00 is debited by the card's id (no code: the card is locked and read alone)
    trans = {"transType": "USE", "amount": "-5.00", "giftcardId": str(card)}
    body = gql(client, PARTIAL, {"trans": trans}, token=admin)
    # then only $4.00 is available: refused, and the balance is as it was
    assert _refusal(body) == ("INSUFFICIENT_FUNDS", "amount", "amount: more than the available balance")
    assert (
        _ok(gql(client, PARTIAL, {"trans": {**trans, "amount": "-4.00"}}, token=admin))["balance"] == "6.00"
    )


def test_nothing_is_debited_in_part_when_holds_take_the_whole_balance(client, admin, card, services):
    _ok(_partial(client, admin, "-10.00", authorizeOnly=True))

    body = _partial(client, admin, "-1.00", allowPartial=True)

    assert _refusal(body) == ("INSUFFICIENT_FUNDS", "amount", "amount: more than the available balance")
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT balance FROM giftcards")).scalar_one() == 1000


def test_a_partial_debit_takes_even_the_last_minor_unit(client, admin, card):
    _ok(_partial(client, admin, "-9.99", authorizeOnly=True))

    part = _ok(_partial(client, admin, "-5.00", allowPartial=True))

    assert (part["amount"], part["availableBalance"], part["partial"]) == ("-0.01", "0.00", True)


# --- what the ledger row and the answer record ---------------------------------------------------

BALANCES = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) {
  balance balanceBefore balanceAfter availableBalance createdAt settledAt } }"""


def test_debits_and_holds_answer_with_the_balances_around_them(client, admin, card):
    trans = {"transType": "USE", "amount": "-1.25", "codeType": "PHYSICAL", "code": CODE, "pin": PIN}

    done = _ok(gql(client, BALANCES, {"trans": trans}, token=admin))
    first = _ok(gql(client, BALANCES, {"trans": {**trans, "authorizeOnly": True}}, token=admin))
    second = _ok(gql(client, BALANCES, {"trans": {**trans, "authorizeOnly": True}}, token=admin))

    def balances(answer):
        return answer["balanceBefore"], answer["balanceAfter"], answer["balance"], answer["availableBalance"]

    assert balances(done) == ("10.00", "8.75", "8.75", "8.75")
    assert balances(first) == ("8.75", "8.75", "8.75", "7.50")
    assert balances(second) == ("8.75", "8.75", "8.75", "6.25")  # both holds count
    assert done["settledAt"] == done["createdAt"] and first["settledAt"] is None


def test_the_ledger_records_how_each_transaction_was_addressed(client, admin, card, services):
    by_code = _ok(_debit(client, admin, sourceId="S-1", refNo="R-1"))
    by_id = _ok(
        gql(
            client,
            TRANS,
            {"trans": {"transType": "USE", "amount": "-1.00", "codeType": None, "giftcardId": str(card)}},
            token=admin,
        )
    )

    with services.engine.connect() as connection:
        code_id = connection.execute(text("SELECT id FROM giftcard_codes")).scalar_one()
        rows = dict(
            (str(row[0]), tuple(row[1:]))
            for row in connection.execute(
                text(
                    "SELECT id, code_type, code_id, source_id, ref_no, created_by FROM giftcard_transactions "
                    "WHERE trans_type = 'USE'"
                )
            )
        )
    assert rows == {
        by_code["id"]: ("PHYSICAL", code_id, "S-1", "R-1", "office"),
        by_id["id"]: (None, None, None, None, "office"),
    }


@pytest.mark.parametrize(
    ("trans_type", "amount", "message"),
    [
        ("USE", "0.00", "amount: must not be zero"),
        ("ADD", "-1.00", "amount: an ADD is positive"),
        ("USE", "1.00", "amount: a USE is negative"),
    ],
)
def test_an_amount_of_the_wrong_sign_is_refused_by_name(client, admin, card, trans_type, amount, message):
    body = gql(
        client,
        TRANS,
        {"trans": {"transType": trans_type, "amount": amount, "giftcardId": str(card)}},
        token=admin,
    )

    assert _refusal(body) == ("BAD_USER_INPUT", "amount", message)


@pytest.mark.settings(max_balance=100)
def test_a_credit_hold_may_reach_the_ceiling_but_not_pass_it(client, admin, card, services):
    # given a card one cent below a ceiling of 100.00
    _set(services, "UPDATE giftcards SET balance = 9999")
    _set(services, "UPDATE giftcard_transactions SET amount = 9999, balance_after = 9999")
    credit = {"transType": "ADD", "amount": "0.01", "giftcardId": str(card), "authorizeOnly": True}

    # then a hold for that cent is taken, and once it is in, not another
    hold = _ok(gql(client, TRANS, {"trans": credit}, token=admin))
    assert _ok(gql(client, CAPTURE, {"id": hold["id"]}, token=admin), "giftcardTransCapture")["balance"] == (
        "100.00"
    )
    code, field, _ = _refusal(gql(client, TRANS, {"trans": credit}, token=admin))
    assert (code, field) == ("LIMIT_EXCEEDED", "amount")


def test_a_retry_that_misses_the_key_at_first_still_answers_as_the_first(client, admin, card, monkeypatch):
    # given a keyed debit, and a retry whose first look for its key misses it (as when the first
    # request commits just after that look)
    keyed = """mutation T($trans: GiftCardTransInput!) {
      giftcardTransAdd(trans: $trans, idempotencyKey: "late-1") { id balance createdAt } }"""
    trans = {"transType": "USE", "amount": "-1.00", "giftcardId": str(card)}
    first = _ok(gql(client, keyed, {"trans": trans}, token=admin))
    monkeypatch.setattr(key_store.KeyStore, "find_committed", lambda *args: None)

    again = _ok(gql(client, keyed, {"trans": trans}, token=admin))

    assert again == first and first["balance"] == "9.00"


@pytest.mark.parametrize("pin", [PIN, "8642"], ids=["old PIN", "new PIN"])
def test_a_pin_changed_while_a_request_is_on_its_way_is_checked_again(
    client, admin, card, services, monkeypatch, pin
):
    # given an argon2 PIN (checked before the lock) replaced by a new PIN before the lock is taken
    _set(
        services,
        "UPDATE giftcard_codes SET pin_hash = :value, pin_key_ids = NULL",
        value=legacy_pin_hash(services.settings, PIN),
    )
    real = ledger_store.LedgerStore.live_codes

    def found_then_changed(*args, **kwargs):
        found = real(*args, **kwargs)
        (code,) = found
        new = services.pins.hash(code.code_id, "8642")
        _set(
            services,
            "UPDATE giftcard_codes SET pin_hash = :value, pin_key_ids = :ids",
            value=new.value,
            ids=new.key_ids,
        )
        return found

    monkeypatch.setattr(ledger_store.LedgerStore, "live_codes", found_then_changed)

    body = _debit(client, admin, pin=pin)

    # then only the PIN stored when the card is locked opens it
    if pin == PIN:
        assert _refusal(body) == ("CARD_NOT_USABLE", "pin", "pin: wrong or missing PIN")
    else:
        assert _ok(body)["balance"] == "9.00"


def test_a_legacy_pin_checked_before_the_lock_is_not_checked_again_under_it(
    client, admin, card, services, monkeypatch
):
    # given an argon2 PIN from before keyed PINs (~100 ms a check)
    _set(
        services,
        "UPDATE giftcard_codes SET pin_hash = :value, pin_key_ids = NULL",
        value=legacy_pin_hash(services.settings, PIN),
    )
    checked = []
    real = services.pins.verify

    def counted(*args, **kwargs):
        checked.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(services.pins, "verify", counted)

    assert _ok(_debit(client, admin))["balance"] == "9.00"

    # then the check made before the lock is the one that counts: argon2 ran once
    assert len(checked) == 1
