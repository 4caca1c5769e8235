"""giftcardAdd with initialValue: a card issued funded (one ADD, ACTIVE) in one database transaction
under one idempotency key, or nothing written at all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from app.domain.card_requests import CodeChanges, NewCard
from app.errors import GiftCardError
from app.policy import Principal
from app.store import ledger as ledger_store
from tests.conftest import error_codes, gql
from tests.test_concurrency import in_parallel

ADD = """mutation Add($giftcard: GiftCardAddInput!, $key: String) {
  giftcardAdd(giftcard: $giftcard, idempotencyKey: $key) {
    id state balance currency initialValue sourceId codes { codeType code } } }"""
CARD = """query Card($id: ID!) { giftcard(id: $id) { results {
  id state balance initialValue transactions { transType amount balanceAfter sourceId status } } } }"""
LOOKUP = """query Lookup($code: String!) { giftcard(code: $code, codeType: PHYSICAL) {
  results { balance initialValue } } }"""
ISSUER = ["CreateGiftCard", "GiftCardTransAdd", "UsePhysicalGiftCardCodes"]
TABLES = ("giftcards", "giftcard_codes", "giftcard_transactions", "giftcard_events", "idempotency_keys")


def _counts(services) -> dict[str, int]:
    with services.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() for table in TABLES
        }


def _ledger(services) -> list[tuple[Any, ...]]:
    with services.engine.connect() as connection:
        statement = text(
            "SELECT giftcard_id, trans_type, status, amount, balance_before, balance_after, source_id, "
            "created_by FROM giftcard_transactions ORDER BY id"
        )
        return [tuple(row) for row in connection.execute(statement)]


def _other_card(client, admin) -> dict[str, Any]:
    """A card issued with $5.00 before the call under test, as it stands."""
    body = gql(
        client, ADD, {"giftcard": {"physicalCode": "OTHERCARD001", "initialValue": "5.00"}}, token=admin
    )
    return body["data"]["giftcardAdd"]


def _as_now(client, admin, card_id: str) -> dict[str, Any]:
    (card,) = gql(client, CARD, {"id": card_id}, token=admin)["data"]["giftcard"]["results"]
    return card


def _verified(services) -> None:
    checked, differences = ledger_store.verify(services.engine, datetime.now(UTC))
    assert checked >= 1 and differences == []


# --- issued with value -----------------------------------------------------------------------


def test_a_card_issued_with_value_is_active_with_one_add_carrying_its_source(client, mint, admin, services):
    # given an issuer that may create cards and add to them, and another card already issued
    other = _other_card(client, admin)
    token = mint(permissions=ISSUER, sub="web-shop")
    giftcard = {"physicalCode": "VALUEPHYS001", "initialValue": "25.00", "sourceId": "SALE-7781"}

    # when it issues a card with an initial value
    body = gql(client, ADD, {"giftcard": giftcard}, token=token)

    # then the card is ACTIVE, its balance is the initial value, and one ADD row holds the sale
    card = body["data"]["giftcardAdd"]
    assert (card["state"], card["balance"], card["initialValue"], card["sourceId"]) == (
        "ACTIVE",
        "25.00",
        "25.00",
        "SALE-7781",
    )
    new_rows = [row for row in _ledger(services) if str(row[0]) == card["id"]]
    assert new_rows == [(int(card["id"]), "ADD", "COMPLETED", 2500, 0, 2500, "SALE-7781", "web-shop")]
    assert _as_now(client, admin, card["id"])["transactions"] == [
        {
            "transType": "ADD",
            "amount": "25.00",
            "balanceAfter": "25.00",
            "sourceId": "SALE-7781",
            "status": "COMPLETED",
        }
    ]
    # and the other card is untouched
    assert _as_now(client, admin, other["id"])["balance"] == "5.00"
    assert _counts(services)["giftcard_transactions"] == 2
    _verified(services)


def test_initial_value_is_shown_to_whoever_sees_the_card(client, mint, admin):
    # given a card issued with $10.00 and later topped up
    card = gql(client, ADD, {"giftcard": {"physicalCode": "SHOWNPHYS001", "initialValue": "10"}}, token=admin)
    card_id = card["data"]["giftcardAdd"]["id"]
    topup = """mutation { giftcardTransAdd(trans: {codeType: PHYSICAL, code: "SHOWNPHYS001",
      transType: ADD, amount: "2.50"}) { balance } }"""
    assert "errors" not in gql(client, topup, token=admin)
    # when a storefront looks it up by its code
    found = gql(client, LOOKUP, {"code": "SHOWNPHYS001"}, token=mint(roles=["storefront"]))
    # then it sees the value it was issued with beside the balance now
    assert found["data"]["giftcard"]["results"] == [{"balance": "12.50", "initialValue": "10.00"}]
    assert _as_now(client, admin, card_id)["initialValue"] == "10.00"


def test_a_card_issued_without_value_is_as_before(client, admin, services):
    body = gql(client, ADD, {"giftcard": {"physicalCode": "EMPTYPHYS001", "sourceId": "POS-1"}}, token=admin)
    card = body["data"]["giftcardAdd"]
    assert (card["state"], card["balance"], card["initialValue"], card["sourceId"]) == (
        "PENDING",
        "0.00",
        None,
        "POS-1",
    )
    assert _counts(services)["giftcard_transactions"] == 0


@pytest.mark.parametrize(
    ("currency", "value", "shown"),
    [("JPY", "500", "500"), ("KWD", "1.250", "1.250"), ("USD", "0.01", "0.01"), ("JPY", "1", "1")],
)
def test_the_initial_value_takes_the_card_currency_decimals(client, admin, currency, value, shown):
    giftcard = {"externalCode": f"EXT{currency}0001", "currency": currency, "initialValue": value}
    card = gql(client, ADD, {"giftcard": giftcard}, token=admin)["data"]["giftcardAdd"]
    assert (card["currency"], card["balance"], card["initialValue"]) == (currency, shown, shown)


# --- refused: nothing written -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "message"),
    [
        ("0", "USD", "initialValue: must be greater than zero"),
        ("0.00", "USD", "initialValue: must be greater than zero"),
        ("-5.00", "USD", "initialValue: must be greater than zero"),
        ("1.005", "USD", "initialValue: USD allows at most 2 decimal places"),
        ("1.5", "JPY", "initialValue: JPY allows at most 0 decimal places"),
        ("ten", "USD", 'initialValue: not a decimal amount like "25.00"'),
        ("", "USD", 'initialValue: not a decimal amount like "25.00"'),
        ("99999999999999999", "USD", 'initialValue: not a decimal amount like "25.00"'),
    ],
)
def test_a_bad_initial_value_is_refused_and_writes_nothing(client, admin, services, value, currency, message):
    # given one card already issued
    other = _other_card(client, admin)
    before = _counts(services)
    # when a card is asked for with a bad initial value
    giftcard = {"physicalCode": "BADVALUE0001", "currency": currency, "initialValue": value}
    body = gql(client, ADD, {"giftcard": giftcard, "key": "bad-1"}, token=admin)
    # then it is BAD_USER_INPUT naming the field, and no card, code, ledger row or key was written
    assert body["data"] == {"giftcardAdd": None}
    assert [error["extensions"] for error in body["errors"]] == [
        {"code": "BAD_USER_INPUT", "field": "initialValue"}
    ]
    assert body["errors"][0]["message"] == message
    assert _counts(services) == before
    assert _as_now(client, admin, other["id"])["balance"] == "5.00"


def test_a_card_already_expired_is_not_issued_with_value(client, admin, services):
    # given one card already issued
    other = _other_card(client, admin)
    before = _counts(services)
    # when a card that expired yesterday is asked for with a value no debit could ever spend
    giftcard = {"physicalCode": "EXPIREDVAL01", "initialValue": "5.00", "expiresAt": "2020-01-01T00:00:00Z"}
    body = gql(client, ADD, {"giftcard": giftcard}, token=admin)
    # then it is refused, naming expiresAt, and nothing is written
    assert body["data"] == {"giftcardAdd": None}
    assert [error["extensions"] for error in body["errors"]] == [
        {"code": "BAD_USER_INPUT", "field": "expiresAt"}
    ]
    assert _counts(services) == before
    assert _as_now(client, admin, other["id"])["balance"] == "5.00"
    # while an expired card without a value is still issued, as before
    giftcard = {"physicalCode": "EXPIREDVAL01", "expiresAt": "2020-01-01T00:00:00Z"}
    assert gql(client, ADD, {"giftcard": giftcard}, token=admin)["data"]["giftcardAdd"]["state"] == "PENDING"


@pytest.mark.settings(max_balance=100)
def test_an_initial_value_over_the_maximum_balance_is_limit_exceeded(client, admin, services):
    # given a ceiling of 100 and one card issued
    other = _other_card(client, admin)
    before = _counts(services)
    # when a card is asked for with one cent more than the ceiling, then with the ceiling exactly
    over = {"physicalCode": "OVERVALUE001", "initialValue": "100.01"}
    refused = gql(client, ADD, {"giftcard": over}, token=admin)
    at_most = gql(client, ADD, {"giftcard": {**over, "initialValue": "100.00"}}, token=admin)
    # then the first is LIMIT_EXCEEDED as credits are, and wrote nothing; the second is issued
    assert [error["extensions"] for error in refused["errors"]] == [
        {"code": "LIMIT_EXCEEDED", "field": "initialValue", "limit": "maxBalance"}
    ]
    assert "at most 100.00 USD" in refused["errors"][0]["message"]
    assert at_most["data"]["giftcardAdd"]["balance"] == "100.00"
    after = _counts(services)
    assert (after["giftcards"], after["giftcard_transactions"]) == (
        before["giftcards"] + 1,
        before["giftcard_transactions"] + 1,
    )
    assert _as_now(client, admin, other["id"])["balance"] == "5.00"


def test_initial_value_needs_gift_card_trans_add(client, mint, admin, services):
    before = _counts(services)
    token = mint(permissions=["CreateGiftCard", "UsePhysicalGiftCardCodes"])
    giftcard = {"physicalCode": "NOADDPHYS001", "initialValue": "10.00"}
    body = gql(client, ADD, {"giftcard": giftcard, "key": "no-add"}, token=token)
    assert error_codes(body) == ["FORBIDDEN"]
    assert "GiftCardTransAdd" in body["errors"][0]["message"]
    assert _counts(services) == before
    # and without the initial value the same token still creates the card
    assert "errors" not in gql(client, ADD, {"giftcard": {"physicalCode": "NOADDPHYS001"}}, token=token)


def test_gift_card_trans_add_alone_cannot_create(client, mint, services):
    before = _counts(services)
    token = mint(permissions=["GiftCardTransAdd", "UsePhysicalGiftCardCodes"])
    body = gql(client, ADD, {"giftcard": {"physicalCode": "NOCREATE0001", "initialValue": "1"}}, token=token)
    assert error_codes(body) == ["FORBIDDEN"]
    assert "CreateGiftCard" in body["errors"][0]["message"]
    assert _counts(services) == before


def test_a_code_taken_leaves_no_card_and_no_ledger_row(client, admin, services):
    # given a card holding a code
    other = _other_card(client, admin)
    before = _counts(services)
    # when a card with value is asked for with the same code
    giftcard = {"physicalCode": "OTHERCARD001", "initialValue": "20.00", "sourceId": "SALE-1"}
    body = gql(client, ADD, {"giftcard": giftcard}, token=admin)
    # then it is a CONFLICT, and nothing of it was written
    assert error_codes(body) == ["CONFLICT"]
    assert _counts(services) == before
    assert _as_now(client, admin, other["id"])["balance"] == "5.00"


# --- one idempotent mutation ----------------------------------------------------------------


def test_a_retry_replays_the_issue_and_writes_nothing(client, admin, services):
    giftcard = {"physicalCode": "RETRYPHYS001", "initialValue": "30.00", "sourceId": "SALE-2"}
    first = gql(client, ADD, {"giftcard": giftcard, "key": "sale-2"}, token=admin)
    counts = _counts(services)
    again = gql(client, ADD, {"giftcard": giftcard, "key": "sale-2"}, token=admin)
    assert again == first and "errors" not in first
    assert _counts(services) == counts
    assert (counts["giftcards"], counts["giftcard_transactions"]) == (1, 1)


def test_the_same_key_with_another_initial_value_is_a_conflict(client, admin, services):
    giftcard = {"physicalCode": "KEYEDPHYS001", "initialValue": "30.00"}
    first = gql(client, ADD, {"giftcard": giftcard, "key": "sale-3"}, token=admin)
    counts = _counts(services)
    for other in ({**giftcard, "initialValue": "31.00"}, {"physicalCode": "KEYEDPHYS001"}):
        body = gql(client, ADD, {"giftcard": other, "key": "sale-3"}, token=admin)
        assert error_codes(body) == ["CONFLICT"], other
    assert _counts(services) == counts
    assert _as_now(client, admin, first["data"]["giftcardAdd"]["id"])["balance"] == "30.00"


def test_a_key_from_before_initial_value_still_matches_its_retry():
    # a key stored before the fields existed digested the request without them
    from dataclasses import asdict

    from app.domain.idempotency import encode

    request = NewCard(codes=CodeChanges(physical_code="OLDKEYPHYS01"))
    old_shape = asdict(request)
    del old_shape["initial_value"], old_shape["store_id"], old_shape["program_id"]
    del old_shape["location_id"], old_shape["enabled"]
    assert encode(request) == encode(old_shape)
    assert encode(NewCard(codes=request.codes, initial_value="1.00")) != encode(old_shape)
    assert encode(NewCard(codes=request.codes, store_id="default")) != encode(old_shape)


def test_concurrent_retries_of_one_key_issue_one_card_with_one_add(services):
    # given eight clients sending the same keyed request at once
    principal = Principal("web-shop", frozenset(ISSUER))
    request = NewCard(codes=CodeChanges(physical_code="RACEVALUE001"), initial_value="40.00")

    def send(_: int) -> object:
        try:
            return services.cards.create(principal, request, "race-sale")
        except GiftCardError as exc:  # pragma: no cover - would be a bug
            return exc

    answers = in_parallel(8, send)
    # then every one got the same card, and one card with one ADD was written
    assert all(answer == answers[0] for answer in answers), answers
    counts = _counts(services)
    assert (counts["giftcards"], counts["giftcard_codes"], counts["giftcard_transactions"]) == (1, 1, 1)
    assert counts["idempotency_keys"] == 1
    assert [row[3:6] for row in _ledger(services)] == [(4000, 0, 4000)]
    _verified(services)
