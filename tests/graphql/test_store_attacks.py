"""Attacks on the store boundary beyond the isolation matrix: a caller of several stores that narrows
to one of them must not get a fresh code attempt budget for a store it already searched, a
reservation made in a store is audited in that store whoever made it, and another store's card is
never locked (nor waited for) by a request that cannot see it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import add_store, gql

POS = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse", "GiftCardTransAdd"]
LOOKUP = """query L($code: String!, $store: ID) {
  giftcard(code: $code, storeId: $store) { results { id } } }"""
RESERVE = """mutation V($store: ID) {
  giftcardReserveCodes(count: 1, agency: "print", requestName: "batch", storeId: $store) { id } }"""
BLOCK = """mutation B($id: ID!) { giftcardBlock(id: $id) { id } }"""
SPEND = """mutation T($id: ID!) {
  giftcardTransAdd(trans: {giftcardId: $id, transType: USE, amount: "-1.00"}) { id } }"""
AUDIT = """query A { auditEvents(first: 100, filter: {action: "giftcardReserveCodes"}) {
  edges { node { action storeId } } } }"""


def _error_code(body: dict) -> str | None:
    return body.get("errors", [{}])[0].get("extensions", {}).get("code")


@pytest.fixture
def two_stores(services) -> None:
    add_store(services, "a")
    add_store(services, "b")


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_naming_one_of_its_stores_gives_no_fresh_budget(client, two_stores, mint):
    # given a till of stores a and b whose misses spent its budget searching both
    till = mint(permissions=POS, sub="till", stores=["a", "b"])
    misses = [gql(client, LOOKUP, {"code": f"MISSING00{n:03}"}, token=till) for n in range(3)]
    assert [_error_code(body) for body in misses] == [None, None, "RATE_LIMITED"]
    # then searching store a (or b) alone is refused too: their budgets were spent by those misses
    for store in ("a", "b"):
        narrowed = gql(client, LOOKUP, {"code": "MISSING00100", "store": store}, token=till)
        assert _error_code(narrowed) == "RATE_LIMITED", (store, narrowed)


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_misses_in_one_store_spend_the_budget_of_a_search_of_both(client, two_stores, mint):
    till = mint(permissions=POS, sub="till", stores=["a", "b"])
    for n in range(2):
        miss = gql(client, LOOKUP, {"code": f"MISSING00{n:03}", "store": "a"}, token=till)
        assert _error_code(miss) is None
    # store a's budget is spent, and a search without storeId searches store a as well
    assert _error_code(gql(client, LOOKUP, {"code": "MISSING00100"}, token=till)) == "RATE_LIMITED"
    # store b's is not
    assert _error_code(gql(client, LOOKUP, {"code": "MISSING00101", "store": "b"}, token=till)) is None


def test_a_reservation_is_audited_in_its_store(client, two_stores, mint):
    # given an operator of both stores reserving codes in store b
    office = mint(roles=["admin"], sub="office", stores=["a", "b"])
    assert "errors" not in gql(client, RESERVE, {"store": "b"}, token=office)
    # then store b's own operator sees that event in its trail, and store a's does not
    office_b = mint(roles=["admin"], sub="office-b", stores=["b"])
    office_a = mint(roles=["admin"], sub="office-a", stores=["a"])
    events_b = gql(client, AUDIT, {}, token=office_b)["data"]["auditEvents"]["edges"]
    assert [edge["node"] for edge in events_b] == [{"action": "giftcardReserveCodes", "storeId": "b"}]
    assert gql(client, AUDIT, {}, token=office_a)["data"]["auditEvents"]["edges"] == []


# Row locks: SQLite has one writer at a time whatever the store.
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_another_stores_card_is_neither_locked_nor_waited_for(client, services, seed, two_stores, mint):
    card_b = seed({CodeType.PHYSICAL: "LOCKEDINB001"}, store_id="b")
    office_a = mint(roles=["admin"], sub="office", stores=["a"])
    # given store b's card locked by a write of its own that is still running
    with services.engine.connect() as holder:
        holder.execute(text("SELECT id FROM giftcards WHERE id = :id FOR UPDATE"), {"id": card_b})
        answers: list[dict] = []
        requests = [
            threading.Thread(
                target=lambda query=query: answers.append(
                    gql(client, query, {"id": str(card_b)}, token=office_a)
                )
            )
            for query in (BLOCK, SPEND)
        ]
        for request in requests:
            request.start()
        for request in requests:
            request.join(timeout=5)
        waited = [request.is_alive() for request in requests]
        holder.rollback()
    for request in requests:
        request.join()
    # then store a's requests answered NOT_FOUND at once, as for a missing card: they did not wait
    assert waited == [False, False]
    assert [answer["errors"][0]["extensions"]["code"] for answer in answers] == ["NOT_FOUND", "NOT_FOUND"]
