"""giftcardAdd's locationId (where a card is issued: Square's location of a new card) and enabled
(false: issued BLOCKED, the XML API's inactive card), each checked before anything is written."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.conftest import error_codes, gql

ADD = """mutation Add($giftcard: GiftCardAddInput!, $key: String) {
  giftcardAdd(giftcard: $giftcard, idempotencyKey: $key) {
    id state balance locationId transactions { transType amount locationId } } }"""
CARD = """query Card($id: ID!) { giftcard(id: $id) { results { id state locationId } } }"""
TABLES = ("giftcards", "giftcard_codes", "giftcard_transactions", "giftcard_events", "idempotency_keys")


def _counts(services) -> dict[str, int]:
    with services.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() for table in TABLES
        }


def _events(services, card_id: str) -> list[tuple[Any, ...]]:
    with services.engine.connect() as connection:
        statement = text("SELECT event, actor FROM giftcard_events WHERE giftcard_id = :id ORDER BY id")
        return [tuple(row) for row in connection.execute(statement, {"id": int(card_id)})]


def test_a_card_issued_at_a_location_keeps_it_and_its_first_add_carries_it(client, admin, services):
    # given an empty card issued at one location, and a funded one at another
    empty = gql(
        client, ADD, {"giftcard": {"physicalCode": "WHERE0000001", "locationId": "STORE-7"}}, token=admin
    )
    funded = gql(
        client,
        ADD,
        {"giftcard": {"physicalCode": "WHERE0000002", "locationId": "TILL 3", "initialValue": "10.00"}},
        token=admin,
    )

    # then each card says where it was issued, and the funded one's ADD says so too
    card = empty["data"]["giftcardAdd"]
    assert (card["state"], card["locationId"], card["transactions"]) == ("PENDING", "STORE-7", [])
    card = funded["data"]["giftcardAdd"]
    assert (card["state"], card["locationId"]) == ("ACTIVE", "TILL 3")
    assert card["transactions"] == [{"transType": "ADD", "amount": "10.00", "locationId": "TILL 3"}]
    (read,) = gql(client, CARD, {"id": empty["data"]["giftcardAdd"]["id"]}, token=admin)["data"]["giftcard"][
        "results"
    ]
    assert read["locationId"] == "STORE-7"


def test_a_card_issued_without_a_location_has_none(client, admin):
    body = gql(
        client, ADD, {"giftcard": {"physicalCode": "WHERE0000003", "initialValue": "1.00"}}, token=admin
    )
    card = body["data"]["giftcardAdd"]
    assert (card["locationId"], card["transactions"][0]["locationId"]) == (None, None)


def test_a_malformed_location_is_refused_naming_it_and_nothing_is_written(client, admin, services):
    before = _counts(services)
    for location in ("", " STORE", "x" * 65, "A\tB"):
        giftcard = {"physicalCode": "WHERE0000004", "locationId": location, "initialValue": "1.00"}
        body = gql(client, ADD, {"giftcard": giftcard}, token=admin)
        assert error_codes(body) == ["BAD_USER_INPUT"], location
        assert body["errors"][0]["extensions"]["field"] == "locationId"
    assert _counts(services) == before


def test_enabled_false_issues_the_card_blocked_after_it_is_created(client, admin, services):
    # when a card is issued with a value and enabled: false
    giftcard = {"physicalCode": "BLOCKED00001", "initialValue": "5.00", "enabled": False}
    card = gql(client, ADD, {"giftcard": giftcard}, token=admin)["data"]["giftcardAdd"]

    # then it holds its value but is BLOCKED, and its events say it was created, then blocked
    assert (card["state"], card["balance"]) == ("BLOCKED", "5.00")
    assert _events(services, card["id"]) == [
        ("CREATED", "office"),
        ("BLOCKED", "office"),
    ]


def test_enabled_true_or_left_out_issues_as_usual(client, admin, services):
    for number, enabled in (("1", True), ("2", None)):
        giftcard = {"physicalCode": f"ENABLED0000{number}", "enabled": enabled}
        card = gql(client, ADD, {"giftcard": giftcard}, token=admin)["data"]["giftcardAdd"]
        assert card["state"] == "PENDING"
        assert _events(services, card["id"]) == [("CREATED", "office")]


def test_enabled_false_needs_block_permission_and_nothing_is_written(client, mint, services):
    # given an issuer that may create cards but not block them
    token = mint(permissions=["CreateGiftCard", "UsePhysicalGiftCardCodes"], sub="issuer")
    before = _counts(services)

    body = gql(client, ADD, {"giftcard": {"physicalCode": "BLOCKED00002", "enabled": False}}, token=token)

    assert error_codes(body) == ["FORBIDDEN"]
    assert "BlockGiftCard" in body["errors"][0]["message"]
    assert _counts(services) == before
    # the same card without enabled: false is issued
    body = gql(client, ADD, {"giftcard": {"physicalCode": "BLOCKED00002"}}, token=token)
    assert body["data"]["giftcardAdd"]["state"] == "PENDING"


def test_an_idempotency_key_covers_location_and_enabled(client, admin, services):
    giftcard = {"physicalCode": "KEYED0000001", "locationId": "STORE-7"}
    first = gql(client, ADD, {"giftcard": giftcard, "key": "issue-1"}, token=admin)
    again = gql(client, ADD, {"giftcard": giftcard, "key": "issue-1"}, token=admin)
    assert again["data"] == first["data"]
    for changed in ({**giftcard, "locationId": "STORE-8"}, {**giftcard, "enabled": False}):
        body = gql(client, ADD, {"giftcard": changed, "key": "issue-1"}, token=admin)
        assert error_codes(body) == ["CONFLICT"], changed
    assert _counts(services)["giftcards"] == 1
