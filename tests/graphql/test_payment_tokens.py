"""Payment tokens end to end (DESIGN §12): a front-end tokenizes a code and PIN, its back end looks
the card up by the token and spends it; single use, short-lived, store-bound, the uniform refusal."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import add_store, error_codes, fund, gql

CODE, PERSONAL, PIN = "TOKENPHYS0001", "TOKENPERSONAL0000001", "4821"
UNIFORM = "no usable gift card matches this code and PIN"
FRONT = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes"]
BACK = [*FRONT, "UseCryptoGiftCardCodes", "GiftCardTransUse", "GiftCardTransAdd"]

TOKENIZE = """mutation T($code: String!, $codeType: CodeType, $pin: String, $key: String) {
  giftcardTokenize(code: $code, codeType: $codeType, pin: $pin, idempotencyKey: $key) { token expiresAt } }"""
BY_TOKEN = """query L($token: String, $code: String) { giftcard(token: $token, code: $code) {
  limitedByPermission results { id balance codes { codeType code isMasked } } } }"""
SPEND = """mutation S($trans: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) { id balance availableBalance status giftcardId } }"""


# For tests where the database does not matter: SQLite alone keeps the suite fast.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _trans(token: str, amount: str = "-4.00", **more: object) -> dict[str, object]:
    return {"transType": "USE", "amount": amount, "token": token, **more}


def _use(token: str, amount: str = "-4.00", **more: object) -> dict[str, object]:
    return {"trans": _trans(token, amount, **more)}


@pytest.fixture
def card(services, seed):
    """A card holding 10.00 with a PHYSICAL code (and PIN) and a PERSONAL code."""
    card_id = seed({CodeType.PHYSICAL: CODE, CodeType.PERSONAL: PERSONAL}, member_id="M1", pin=PIN)
    fund(services.engine, card_id, 1000)
    return card_id


@pytest.fixture
def front(mint):
    return mint(permissions=FRONT, sub="shop-front")


@pytest.fixture
def back(mint):
    return mint(permissions=BACK, sub="shop-back")


def _tokenize(client, token, code=CODE, pin=PIN, **variables):
    return gql(client, TOKENIZE, {"code": code, "pin": pin, **variables}, token=token)


def _issued(client, token, **variables) -> str:
    body = _tokenize(client, token, **variables)
    assert "errors" not in body, body
    return str(body["data"]["giftcardTokenize"]["token"])


def _rows(services, sql: str, **params):
    with services.engine.connect() as connection:
        return connection.execute(text(sql), params).all()


def _refusal(body) -> tuple[list[str], list[str]]:
    return error_codes(body), [error["message"] for error in body["errors"]]


def test_tokenize_gives_a_single_use_token_the_back_end_looks_up_masked_and_twice(
    client, services, card, front, back
):
    # when the front-end tokenizes the code and its PIN
    before = datetime.now(UTC)
    body = _tokenize(client, front)
    issued = body["data"]["giftcardTokenize"]

    # then it gets an opaque token valid for the configured ten minutes, and nothing of the card
    assert re.fullmatch(r"gct_[A-Za-z0-9_-]{32}", issued["token"])
    expires = datetime.fromisoformat(issued["expiresAt"])
    assert before + timedelta(seconds=600) <= expires <= datetime.now(UTC) + timedelta(seconds=600)
    # and the back end finds the card by it, as often as it likes, every code masked: it never
    # sees the code it was handed a token for (nor any other it does not hold)
    for _ in range(2):
        found = gql(client, BY_TOKEN, {"token": issued["token"]}, token=back)["data"]["giftcard"]
        assert found == {
            "limitedByPermission": True,
            "results": [
                {
                    "id": str(card),
                    "balance": "10.00",
                    "codes": [
                        {"codeType": "PHYSICAL", "code": "*" * 9 + CODE[-4:], "isMasked": True},
                        {"codeType": "PERSONAL", "code": "*" * 16 + PERSONAL[-4:], "isMasked": True},
                    ],
                }
            ],
        }
    (row,) = _rows(services, "SELECT giftcard_id, subject, used_at, store_id FROM payment_tokens")
    assert tuple(row) == (card, "shop-front", None, "default")


@SQLITE_ONLY
def test_no_token_in_the_logs(client, card, front, back, caplog):
    caplog.set_level(logging.DEBUG)
    token = _issued(client, front)
    gql(client, BY_TOKEN, {"token": token}, token=back)
    gql(client, SPEND, _use(token), token=back)
    gql(client, SPEND, _use(token), token=back)  # refused
    assert caplog.records and token[4:] not in caplog.text and PIN not in caplog.text


@SQLITE_ONLY
def test_tokenizing_is_audited(client, services, card, front, admin):
    _issued(client, front)
    events = _rows(
        services,
        "SELECT action, outcome, subject, giftcard_id FROM audit_events WHERE action = 'giftcardTokenize'",
    )
    assert [tuple(event) for event in events] == [("giftcardTokenize", "OK", "shop-front", card)]


@SQLITE_ONLY
def test_a_code_without_a_pin_tokenizes_without_one(client, services, seed, front, back):
    card_id = seed({CodeType.PHYSICAL: "NOPINCODE0001"}, balance=500)
    token = _issued(client, front, code="NOPINCODE0001", pin=None, codeType="PHYSICAL")
    found = gql(client, BY_TOKEN, {"token": token}, token=back)["data"]["giftcard"]["results"]
    assert [result["id"] for result in found] == [str(card_id)]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("code", "pin"),
    [(CODE, "1111"), (CODE, None), ("UNKNOWNCODE0001", PIN)],
    ids=["wrong", "none", "unknown"],
)
def test_every_failure_is_the_uniform_refusal_and_writes_no_token(client, services, card, front, code, pin):
    body = _tokenize(client, front, code=code, pin=pin)
    assert body["data"]["giftcardTokenize"] is None
    assert _refusal(body) == (["CARD_NOT_USABLE"], [UNIFORM])
    assert _rows(services, "SELECT id FROM payment_tokens") == []
    # a wrong PIN is counted as a debit's is; a missing one is not
    (failures,) = _rows(
        services, "SELECT failed_pin_attempts FROM giftcard_codes WHERE code_type = 'PHYSICAL'"
    )
    assert failures[0] == (1 if pin == "1111" else 0)


@SQLITE_ONLY
@pytest.mark.settings(code_attempt_limits="2/minute")
def test_misses_spend_the_attempt_budget(client, card, front):
    # given two misses (a wrong PIN, an unknown code)
    _tokenize(client, front, pin="1111")
    _tokenize(client, front, code="UNKNOWNCODE0001")
    # then even the right code and PIN are refused for the rest of the window
    assert error_codes(_tokenize(client, front)) == ["RATE_LIMITED"]


@SQLITE_ONLY
@pytest.mark.settings(code_attempt_limits="2/minute")
def test_a_hit_gives_the_budget_back(client, card, front):
    for _ in range(3):
        _issued(client, front)


@pytest.mark.settings(pin_max_failures=2)
def test_wrong_pins_lock_the_code_for_tokenizing_and_debits(client, services, card, front, back):
    for _ in range(2):
        _tokenize(client, front, pin="1111")
    # the right PIN is refused while the code is locked
    assert _refusal(_tokenize(client, front)) == (["CARD_NOT_USABLE"], [UNIFORM])
    (locked,) = _rows(services, "SELECT pin_locked_until FROM giftcard_codes WHERE code_type = 'PHYSICAL'")
    assert locked[0] is not None
    debit = {"transType": "USE", "amount": "-1.00", "codeType": "PHYSICAL", "code": CODE, "pin": PIN}
    assert error_codes(gql(client, SPEND, {"trans": debit}, token=back)) == ["CARD_NOT_USABLE"]


@SQLITE_ONLY
def test_a_trusted_caller_learns_why(client, card, admin):
    body = _tokenize(client, admin, pin="1111")
    assert error_codes(body) == ["CARD_NOT_USABLE"]
    assert body["errors"][0]["extensions"]["field"] == "pin"


def test_spending_by_token_uses_it_up(client, services, card, front, back):
    token = _issued(client, front)

    # when the back end spends by the token
    spent = gql(client, SPEND, _use(token), token=back)["data"]["giftcardTransAdd"]

    # then the card is debited with its ledger row, and the token is used up by that row
    assert {key: spent[key] for key in ("balance", "availableBalance", "status", "giftcardId")} == {
        "balance": "6.00",
        "availableBalance": "6.00",
        "status": "COMPLETED",
        "giftcardId": str(card),
    }
    (entry,) = _rows(
        services,
        "SELECT amount, code_type, created_by FROM giftcard_transactions WHERE id = :id",
        id=spent["id"],
    )
    assert tuple(entry) == (-400, "PHYSICAL", "shop-back")
    (row,) = _rows(services, "SELECT used_at IS NOT NULL, transaction_id FROM payment_tokens")
    assert (bool(row[0]), str(row[1])) == (True, spent["id"])
    # a second spend is the uniform refusal and writes nothing; the token finds nothing any more
    again = gql(client, SPEND, _use(token, "-1.00"), token=back)
    assert _refusal(again) == (["CARD_NOT_USABLE"], [UNIFORM])
    assert gql(client, BY_TOKEN, {"token": token}, token=back)["data"]["giftcard"]["results"] == []
    balances = _rows(services, "SELECT balance FROM giftcards WHERE id = :id", id=card)
    assert balances[0][0] == 600
    assert len(_rows(services, "SELECT id FROM giftcard_transactions WHERE giftcard_id = :id", id=card)) == 2


def test_a_refused_spend_keeps_the_token(client, services, card, front, back):
    token = _issued(client, front)
    assert error_codes(gql(client, SPEND, _use(token, "-20.00"), token=back)) == ["INSUFFICIENT_FUNDS"]
    assert _rows(services, "SELECT used_at FROM payment_tokens")[0][0] is None
    assert (
        gql(client, SPEND, _use(token, "-10.00"), token=back)["data"]["giftcardTransAdd"]["balance"] == "0.00"
    )


def test_a_retry_with_the_idempotency_key_replays_the_first_answer(client, services, card, front, back):
    token = _issued(client, front)
    first = gql(client, SPEND, {**_use(token), "key": "order-1"}, token=back)["data"]["giftcardTransAdd"]
    again = gql(client, SPEND, {**_use(token), "key": "order-1"}, token=back)["data"]["giftcardTransAdd"]
    assert again == first
    assert len(_rows(services, "SELECT id FROM giftcard_transactions WHERE giftcard_id = :id", id=card)) == 2


@SQLITE_ONLY
def test_an_idempotency_key_used_with_another_token_spends_nothing(client, services, card, front, back):
    spent, other = _issued(client, front), _issued(client, front)
    assert "errors" not in gql(client, SPEND, {**_use(spent), "key": "order-2"}, token=back)
    body = gql(client, SPEND, {**_use(other, "-1.00"), "key": "order-2"}, token=back)
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["field"] == "idempotencyKey"
    # the other token is still usable, and the card was debited once
    assert sorted(row[0] is None for row in _rows(services, "SELECT used_at FROM payment_tokens")) == [
        False,
        True,
    ]
    assert (
        gql(client, SPEND, _use(other, "-1.00"), token=back)["data"]["giftcardTransAdd"]["balance"] == "5.00"
    )


def test_an_authorization_uses_the_token_up(client, services, card, front, back):
    token = _issued(client, front)
    held = gql(client, SPEND, _use(token, authorizeOnly=True), token=back)["data"]["giftcardTransAdd"]
    assert (held["status"], held["balance"], held["availableBalance"]) == ("AUTHORIZED", "10.00", "6.00")
    assert error_codes(gql(client, SPEND, _use(token, "-1.00"), token=back)) == ["CARD_NOT_USABLE"]


@SQLITE_ONLY
def test_a_tokenize_retry_replays_the_same_token(client, services, card, front):
    first = _issued(client, front, key="checkout-7")
    assert _issued(client, front, key="checkout-7") == first
    assert len(_rows(services, "SELECT id FROM payment_tokens")) == 1


@pytest.mark.parametrize("void", ["expired", "revoked", "blocked"])
def test_an_expired_token_a_revoked_code_or_a_blocked_card_is_refused(
    client, services, card, front, back, void
):
    token = _issued(client, front)
    sql = {
        "expired": "UPDATE payment_tokens SET expires_at = :past",
        "revoked": "UPDATE giftcard_codes SET revoked_at = :past WHERE code_type = 'PHYSICAL'",
        "blocked": "UPDATE giftcards SET state = 'BLOCKED'",
    }[void]
    with services.engine.begin() as connection:
        connection.execute(text(sql), {"past": datetime.now(UTC) - timedelta(seconds=1)})
    assert _refusal(gql(client, SPEND, _use(token), token=back)) == (["CARD_NOT_USABLE"], [UNIFORM])
    results = gql(client, BY_TOKEN, {"token": token}, token=back)["data"]["giftcard"]["results"]
    assert len(results) == (1 if void == "blocked" else 0)  # a lookup shows a blocked card as it is
    assert _rows(services, "SELECT balance FROM giftcards WHERE id = :id", id=card)[0][0] == 1000


def test_another_stores_token_finds_and_spends_nothing(client, services, seed, mint, back):
    add_store(services, "north")
    card_id = seed({CodeType.PHYSICAL: "NORTHCODE0001"}, balance=1000, store_id="north")
    token = _issued(client, mint(permissions=FRONT, stores=["north"]), code="NORTHCODE0001", pin=None)
    assert _rows(services, "SELECT store_id FROM payment_tokens")[0][0] == "north"

    assert gql(client, BY_TOKEN, {"token": token}, token=back)["data"]["giftcard"]["results"] == []
    assert _refusal(gql(client, SPEND, _use(token), token=back)) == (["CARD_NOT_USABLE"], [UNIFORM])
    assert _rows(services, "SELECT balance FROM giftcards WHERE id = :id", id=card_id)[0][0] == 1000
    north_back = mint(permissions=BACK, stores=["north"])
    assert gql(client, SPEND, _use(token), token=north_back)["data"]["giftcardTransAdd"]["balance"] == "6.00"


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("more", "field"),
    [
        ({"code": CODE}, "code"),
        ({"codeType": "PHYSICAL"}, "code_type"),
        ({"pin": PIN}, "pin"),
        ({"giftcardId": "1"}, "giftcard_id"),
        ({"token": "gct_short"}, "token"),
    ],
)
def test_bad_spends_by_token_name_the_field(client, services, card, front, back, more, field):
    token = _issued(client, front)
    body = gql(client, SPEND, {"trans": {**_trans(token), **more}}, token=back)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == re.sub(r"_(\w)", lambda m: m.group(1).upper(), field)
    assert _rows(services, "SELECT used_at FROM payment_tokens")[0][0] is None


@SQLITE_ONLY
def test_bad_lookups_by_token(client, card, front, back):
    token = _issued(client, front)
    assert (
        gql(client, BY_TOKEN, {"token": "gct_" + "A" * 32}, token=back)["data"]["giftcard"]["results"] == []
    )
    assert gql(client, BY_TOKEN, {"token": "not a token"}, token=back)["data"]["giftcard"]["results"] == []
    both = gql(client, BY_TOKEN, {"token": token, "code": CODE}, token=back)
    assert error_codes(both) == ["BAD_USER_INPUT"]


@SQLITE_ONLY
def test_a_caller_without_the_code_types_use_permission_finds_nothing(client, card, front, mint):
    token = _issued(client, front)
    external_only = mint(permissions=["FindGiftCardByCode", "UseExternalGiftCardCodes", "GiftCardTransUse"])
    assert gql(client, BY_TOKEN, {"token": token}, token=external_only)["data"]["giftcard"]["results"] == []
    assert error_codes(gql(client, SPEND, _use(token), token=external_only)) == ["CARD_NOT_USABLE"]
    no_find = mint(permissions=["UsePhysicalGiftCardCodes"])
    assert error_codes(gql(client, BY_TOKEN, {"token": token}, token=no_find)) == ["FORBIDDEN"]


@SQLITE_ONLY
@pytest.mark.settings(payment_token_ttl_seconds=30)
def test_the_lifetime_is_the_setting(client, card, front):
    expires = datetime.fromisoformat(_tokenize(client, front)["data"]["giftcardTokenize"]["expiresAt"])
    assert timedelta(seconds=28) < expires - datetime.now(UTC) <= timedelta(seconds=30)


def test_tokenizing_purges_expired_tokens(client, services, card, front):
    _issued(client, front)
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE payment_tokens SET expires_at = :past"), {"past": datetime.now(UTC)})
    fresh = _issued(client, front)
    assert len(_rows(services, "SELECT id FROM payment_tokens")) == 1
    assert fresh


@SQLITE_ONLY
def test_a_back_end_that_may_list_cards_sees_codes_as_a_lookup_by_id_shows_them(client, card, front, mint):
    token = _issued(client, front)
    office = mint(permissions=[*BACK, "ListGiftCards"])
    (found,) = gql(client, BY_TOKEN, {"token": token}, token=office)["data"]["giftcard"]["results"]
    assert found["codes"][0] == {"codeType": "PHYSICAL", "code": CODE, "isMasked": False}
