"""Payment tokens at their edges: a code expiring today, a card past its expiry, a code under two
types or in two stores, what a malformed input names, and what an idempotency key covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import add_store, error_codes, fund, gql
from tests.graphql.test_payment_tokens import (
    BACK,
    BY_TOKEN,
    CODE,
    FRONT,
    PIN,
    SPEND,
    TOKENIZE,
    UNIFORM,
    _issued,
    _rows,
    _tokenize,
    _use,
)

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TWICE = "AMBIGUOUS0001"  # a PHYSICAL code of one card and an EXTERNAL code of another
BOTH_TYPES = [*FRONT, "UseExternalGiftCardCodes"]
TOKENIZE_IN = """mutation T($code: String!, $pin: String, $storeId: ID) {
  giftcardTokenize(code: $code, pin: $pin, storeId: $storeId) { token } }"""
REVOKE = """mutation R($id: ID!) { giftcardEdit(giftcard: {id: $id, revokePhysicalCode: true}) { id } }"""


def _funded(services, seed, codes, **more) -> int:
    card_id = seed(codes, **more)
    fund(services.engine, card_id, 1000)
    return int(card_id)


def test_a_code_expiring_today_tokenizes_finds_and_spends(client, services, seed, mint):
    # given a card whose PHYSICAL code expires at the end of today (UTC)
    today = datetime.now(UTC).date()
    card_id = _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN, expires={CodeType.PHYSICAL: today})
    front, back = mint(permissions=FRONT), mint(permissions=BACK)

    # when it is tokenized, looked up and spent by the token
    token = _issued(client, front)
    found = gql(client, BY_TOKEN, {"token": token}, token=back)["data"]["giftcard"]["results"]
    spent = gql(client, SPEND, _use(token), token=back)

    # then the code still counts today: the card is found and charged
    assert [card["id"] for card in found] == [str(card_id)]
    assert spent["data"]["giftcardTransAdd"]["balance"] == "6.00"


def test_a_token_of_a_code_that_expires_later_is_found_and_spent(client, services, seed, mint):
    later = datetime.now(UTC).date() + timedelta(days=30)
    _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN, expires={CodeType.PHYSICAL: later})
    front, back = mint(permissions=FRONT), mint(permissions=BACK)
    token = _issued(client, front)
    assert len(gql(client, BY_TOKEN, {"token": token}, token=back)["data"]["giftcard"]["results"]) == 1
    assert gql(client, SPEND, _use(token), token=back)["data"]["giftcardTransAdd"]["balance"] == "6.00"


def test_a_card_past_its_expiry_gets_no_token(client, services, seed, mint):
    card_id = _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN)
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET expires_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC) - timedelta(days=1), "id": card_id},
        )
    body = _tokenize(client, mint(permissions=FRONT))
    assert error_codes(body) == ["CARD_NOT_USABLE"]
    assert body["errors"][0]["message"] == UNIFORM
    assert _rows(services, "SELECT id FROM payment_tokens") == []


@SQLITE_ONLY
def test_a_caller_that_may_use_no_code_type_is_told_so(client, services, seed, mint):
    _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN)
    body = _tokenize(client, mint(permissions=["FindGiftCardByCode"]))
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["message"] == "the token lacks every Use…GiftCardCodes permission"


@SQLITE_ONLY
@pytest.mark.parametrize(("variables", "field"), [({"code": "AB"}, "code"), ({"pin": "12"}, "pin")])
def test_a_malformed_code_or_pin_names_its_field(client, services, seed, mint, variables, field):
    _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN)
    body = _tokenize(client, mint(permissions=FRONT), **variables)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field


@SQLITE_ONLY
def test_a_code_under_two_types_needs_its_type(client, services, seed, mint):
    # given the same code as one card's PHYSICAL code and another card's EXTERNAL code
    physical = _funded(services, seed, {CodeType.PHYSICAL: TWICE})
    _funded(services, seed, {CodeType.EXTERNAL: TWICE})
    untrusted = mint(permissions=BOTH_TYPES)
    trusted = mint(permissions=[*BOTH_TYPES, "ListGiftCards"])

    # then without codeType a trusted caller is asked for it, an untrusted one refused alike
    told = gql(client, TOKENIZE, {"code": TWICE}, token=trusted)
    assert error_codes(told) == ["BAD_USER_INPUT"]
    assert told["errors"][0]["extensions"]["field"] == "codeType"
    assert (
        told["errors"][0]["message"] == "codeType: the code exists under more than one code type; say which"
    )
    hidden = gql(client, TOKENIZE, {"code": TWICE}, token=untrusted)
    assert (error_codes(hidden), hidden["errors"][0]["message"]) == (["CARD_NOT_USABLE"], UNIFORM)
    assert _rows(services, "SELECT id FROM payment_tokens") == []

    # and with codeType the token stands for that type's card
    gql(client, TOKENIZE, {"code": TWICE, "codeType": "PHYSICAL"}, token=untrusted)
    assert _rows(services, "SELECT giftcard_id FROM payment_tokens") == [(physical,)]


@SQLITE_ONLY
def test_a_revoked_code_is_named_to_a_trusted_caller_whatever_the_other_types_hold(
    client, services, seed, mint
):
    _funded(services, seed, {CodeType.PHYSICAL: TWICE}, revoked={CodeType.PHYSICAL})
    trusted = mint(permissions=[*BOTH_TYPES, "ListGiftCards"])
    body = gql(client, TOKENIZE, {"code": TWICE}, token=trusted)
    assert error_codes(body) == ["CARD_NOT_USABLE"]
    assert body["errors"][0]["message"] == "code: the code was revoked"


def test_storeid_picks_the_store_of_a_code_in_two(client, services, seed, mint):
    # given the same code in the default store and in "north", and a front-end of both
    add_store(services, "north")
    _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN)
    north = _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN, store_id="north")
    front = mint(permissions=FRONT, stores=["default", "north"])

    # then without storeId it gets the uniform refusal, with it a token for that store's card
    assert error_codes(gql(client, TOKENIZE_IN, {"code": CODE, "pin": PIN}, token=front)) == [
        "CARD_NOT_USABLE"
    ]
    body = gql(client, TOKENIZE_IN, {"code": CODE, "pin": PIN, "storeId": "north"}, token=front)
    assert "errors" not in body, body
    assert _rows(services, "SELECT giftcard_id, store_id FROM payment_tokens") == [(north, "north")]


@SQLITE_ONLY
def test_a_retry_replays_the_token_even_after_the_code_is_revoked(client, services, seed, mint, admin):
    card_id = _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN)
    front = mint(permissions=FRONT)
    first = _issued(client, front, key="checkout-1")
    gql(client, REVOKE, {"id": str(card_id)}, token=admin)
    assert _issued(client, front, key="checkout-1") == first


@SQLITE_ONLY
def test_a_key_reused_for_another_code_is_a_conflict(client, services, seed, mint):
    _funded(services, seed, {CodeType.PHYSICAL: CODE}, pin=PIN)
    _funded(services, seed, {CodeType.PHYSICAL: "TOKENPHYS0002"})
    front = mint(permissions=FRONT)
    _issued(client, front, key="checkout-1")
    body = _tokenize(client, front, code="TOKENPHYS0002", pin=None, key="checkout-1")
    assert error_codes(body) == ["CONFLICT"]
    assert len(_rows(services, "SELECT id FROM payment_tokens")) == 1
