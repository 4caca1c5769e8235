"""Locations on transactions: recorded by giftcardTransAdd, capture and cancel, shown in answers and
history, filtered on exactly, refused when malformed, and covered by the idempotency key."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from sqlalchemy import text

from app.domain.idempotency import encode
from app.domain.trans_requests import TransRequest
from app.enums import TransType
from tests.conftest import error_codes, fund, gql

TRANS = """mutation T($trans: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) { id giftcardId status amount locationId } }"""
CAPTURE = """mutation C($id: ID!, $key: String, $at: String) {
  giftcardTransCapture(id: $id, idempotencyKey: $key, locationId: $at) { id status locationId } }"""
CANCEL = """mutation X($id: ID!, $key: String, $at: String) {
  giftcardTransCancel(id: $id, idempotencyKey: $key, locationId: $at) { id status locationId } }"""
HISTORY = """query H($first: Int, $after: String, $filter: GiftCardTransactionFilter) {
  giftcardTransactions(first: $first, after: $after, filter: $filter) {
    edges { node { id giftcardId locationId } } pageInfo { hasNextPage endCursor } } }"""
BY_ID = ["ListGiftCards", "GiftCardTransUse", "GiftCardTransAdd"]
LATEST = """query L($id: ID!) { giftcard(id: $id) { results { transactions { id locationId } } } }"""


@pytest.fixture
def cards(seed, services) -> tuple[int, int]:
    """Two cards with $10.00 each."""
    first, second = seed({}), seed({})
    fund(services.engine, first, 1000)
    fund(services.engine, second, 1000)
    return first, second


def _add(client, token, card_id: int, amount: str = "-1.00", key: str | None = None, **extra) -> dict:
    kind = "ADD" if not amount.startswith("-") else "USE"
    trans = {"giftcardId": str(card_id), "transType": kind, "amount": amount, **extra}
    return gql(client, TRANS, {"trans": trans, "key": key}, token=token)


def _added(client, token, card_id: int, **extra) -> dict:
    body = _add(client, token, card_id, **extra)
    assert "errors" not in body, body
    return body["data"]["giftcardTransAdd"]


def _refusal(body) -> tuple[str, str | None]:
    (error,) = body["errors"]
    return error["extensions"]["code"], error["extensions"].get("field")


def _locations(services) -> list[tuple[int, str | None]]:
    with services.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, location_id FROM giftcard_transactions ORDER BY id"))
        return [(int(row[0]), row[1]) for row in rows]


def _history(client, token, **variables) -> list[tuple[str, str | None]]:
    """Every page of the history, as (id, locationId)."""
    found, after = [], None
    while True:
        body = gql(client, HISTORY, {**variables, "after": after}, token=token)
        assert "errors" not in body, body
        page = body["data"]["giftcardTransactions"]
        found += [(edge["node"]["id"], edge["node"]["locationId"]) for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def test_a_transaction_records_and_shows_its_location(client, admin, cards, services):
    first, second = cards
    # when transactions are added at a location, at another one and at none
    at_shop = _added(client, admin, first, locationId="SHOP-1")
    at_kiosk = _added(client, admin, second, locationId="Kiosk 2 / Gate B")
    nowhere = _added(client, admin, first)
    # then the answers, the rows and the card's latest transactions say where
    assert (at_shop["locationId"], at_kiosk["locationId"], nowhere["locationId"]) == (
        "SHOP-1",
        "Kiosk 2 / Gate B",
        None,
    )
    rows = dict(_locations(services))
    assert rows[int(at_shop["id"])] == "SHOP-1"
    assert rows[int(at_kiosk["id"])] == "Kiosk 2 / Gate B"
    assert rows[int(nowhere["id"])] is None
    body = gql(client, LATEST, {"id": str(first)}, token=admin)
    latest = body["data"]["giftcard"]["results"][0]["transactions"]
    assert [(item["id"], item["locationId"]) for item in latest[:2]] == [
        (nowhere["id"], None),
        (at_shop["id"], "SHOP-1"),
    ]


def test_the_history_filters_on_the_location_exactly_across_pages(client, admin, cards):
    first, second = cards
    # given rows at SHOP-1 on both cards, among rows elsewhere, at a similar name and at none
    wanted = [_added(client, admin, first, locationId="SHOP-1")["id"]]
    _added(client, admin, first, locationId="SHOP-2")
    _added(client, admin, first, locationId="shop-1")
    _added(client, admin, first, locationId="SHOP-10")
    wanted.append(_added(client, admin, second, locationId="SHOP-1")["id"])
    _added(client, admin, second)
    wanted.append(_added(client, admin, first, locationId="SHOP-1")["id"])
    # when the history is read at SHOP-1 one row a page, then it has those rows only, in order
    assert _history(client, admin, first=1, filter={"locationId": "SHOP-1"}) == [
        (item, "SHOP-1") for item in wanted
    ]
    # and with another condition both hold
    mine = _history(client, admin, first=1, filter={"locationId": "SHOP-1", "giftcardId": str(first)})
    assert mine == [(wanted[0], "SHOP-1"), (wanted[2], "SHOP-1")]
    # and a location nobody used finds nothing, as an empty page
    assert _history(client, admin, filter={"locationId": "SHOP-3"}) == []
    # and without the filter every row is listed (the two fundings included)
    assert len(_history(client, admin)) == 9


BAD_LOCATIONS = [
    pytest.param("L" * 65, "at most 64 characters", id="too-long"),
    pytest.param("SHOP\x07", "control characters", id="control"),
    pytest.param("SHOP\n1", "control characters", id="newline"),
    pytest.param("", "not blank", id="empty"),
    pytest.param("   ", "not blank", id="blank"),
    pytest.param(" SHOP-1", "no spaces at either end", id="leading-space"),
    pytest.param("SHOP-1 ", "no spaces at either end", id="trailing-space"),
]


@pytest.mark.parametrize(("location", "message"), BAD_LOCATIONS)
def test_a_malformed_location_is_refused_everywhere_and_writes_nothing(
    client, admin, cards, services, location, message
):
    first, _ = cards
    hold = _added(client, admin, first, authorizeOnly=True)
    before = _locations(services)
    # when a transaction, a capture, a cancel or a history filter names a malformed location
    bodies = [
        _add(client, admin, first, locationId=location),
        gql(client, CAPTURE, {"id": hold["id"], "at": location}, token=admin),
        gql(client, CANCEL, {"id": hold["id"], "at": location}, token=admin),
        gql(client, HISTORY, {"filter": {"locationId": location}}, token=admin),
    ]
    # then each is a BAD_USER_INPUT naming the field, saying why, and nothing was written
    for body in bodies:
        assert _refusal(body) == ("BAD_USER_INPUT", "locationId"), body
        assert message in body["errors"][0]["message"]
    assert _locations(services) == before
    status = gql(client, HISTORY, {"filter": {"status": "AUTHORIZED"}}, token=admin)
    assert [edge["node"]["id"] for edge in status["data"]["giftcardTransactions"]["edges"]] == [hold["id"]]


def test_a_location_of_64_characters_and_any_script_is_taken(client, admin, cards):
    first, _ = cards
    for location in ("L" * 64, "Café Zürich — Kasse 3", "東京駅"):
        assert _added(client, admin, first, locationId=location)["locationId"] == location


def test_a_retry_with_the_key_needs_the_same_location(client, admin, cards, services):
    first, second = cards
    original = _added(client, admin, first, key="k-1", locationId="SHOP-1")
    rows = _locations(services)
    # when it is retried with the same location, then the first answer comes back and nothing is written
    assert _added(client, admin, first, key="k-1", locationId="SHOP-1") == original
    # and with another location, with none, or with one where the first had none: CONFLICT
    assert error_codes(_add(client, admin, first, key="k-1", locationId="SHOP-2")) == ["CONFLICT"]
    assert error_codes(_add(client, admin, first, key="k-1")) == ["CONFLICT"]
    plain = _added(client, admin, second, key="k-2")
    assert error_codes(_add(client, admin, second, key="k-2", locationId="SHOP-1")) == ["CONFLICT"]
    assert _locations(services) == [*rows, (int(plain["id"]), None)]


def test_a_key_covers_a_request_without_location_as_before_locations_existed(mint, client, cards, services):
    # given a keyed transaction without a location
    office = mint(permissions=BY_ID, sub="office")
    first, _ = cards
    _added(client, office, first, key="old", amount="-2.00")
    # then the stored digest is that of the request encoded without location_id, store_id and token,
    # as before the fields existed, so that keys stored then still match their retries
    request = asdict(TransRequest(trans_type=TransType.USE, amount="-2.00", giftcard_id=str(first)))
    del request["location_id"], request["store_id"], request["token"]
    permissions = sorted(services.policy.expand(BY_ID))
    document = encode({"operation": "giftcardTransAdd", "permissions": permissions, "request": request})
    with services.engine.connect() as connection:
        stored = connection.execute(text("SELECT request_hash FROM idempotency_keys WHERE key = 'old'")).one()
    assert bytes(stored[0]) == services.vault.keyed_digests(b"idempotency", document)[0]


def test_capture_and_cancel_record_where_they_happened(client, admin, cards, services):
    first, second = cards
    kept = _added(client, admin, first, authorizeOnly=True, locationId="SHOP-1")
    moved = _added(client, admin, first, authorizeOnly=True, locationId="SHOP-1")
    cancelled = _added(client, admin, second, authorizeOnly=True, locationId="SHOP-1")
    plain = _added(client, admin, second, authorizeOnly=True)
    # when one is captured without a location, one at another, one cancelled at another, one cancelled
    assert gql(client, CAPTURE, {"id": kept["id"]}, token=admin)["data"]["giftcardTransCapture"] == {
        "id": kept["id"],
        "status": "COMPLETED",
        "locationId": "SHOP-1",
    }
    captured = gql(client, CAPTURE, {"id": moved["id"], "at": "SHOP-9"}, token=admin)
    assert captured["data"]["giftcardTransCapture"]["locationId"] == "SHOP-9"
    settled = gql(client, CANCEL, {"id": cancelled["id"], "at": "DESK"}, token=admin)
    assert settled["data"]["giftcardTransCancel"] == {
        "id": cancelled["id"],
        "status": "CANCELLED",
        "locationId": "DESK",
    }
    assert (
        gql(client, CANCEL, {"id": plain["id"]}, token=admin)["data"]["giftcardTransCancel"]["locationId"]
        is None
    )
    # then the rows say so, and the history finds them where they ended
    rows = dict(_locations(services))
    assert [rows[int(item["id"])] for item in (kept, moved, cancelled, plain)] == [
        "SHOP-1",
        "SHOP-9",
        "DESK",
        None,
    ]
    assert _history(client, admin, filter={"locationId": "SHOP-1"}) == [(kept["id"], "SHOP-1")]


def test_a_capture_retry_needs_the_same_location(client, admin, cards):
    first, _ = cards
    hold = _added(client, admin, first, authorizeOnly=True)
    done = gql(client, CAPTURE, {"id": hold["id"], "key": "cap", "at": "SHOP-1"}, token=admin)
    assert gql(client, CAPTURE, {"id": hold["id"], "key": "cap", "at": "SHOP-1"}, token=admin) == done
    for other in ("SHOP-2", None):
        retry = gql(client, CAPTURE, {"id": hold["id"], "key": "cap", "at": other}, token=admin)
        assert error_codes(retry) == ["CONFLICT"]
    other_hold = _added(client, admin, first, authorizeOnly=True)
    gql(client, CANCEL, {"id": other_hold["id"], "key": "can"}, token=admin)
    retry = gql(client, CANCEL, {"id": other_hold["id"], "key": "can", "at": "SHOP-1"}, token=admin)
    assert error_codes(retry) == ["CONFLICT"]
