"""Stores beyond isolation: the same code in two stores, the ambiguity error and `storeId`, callers of
every store or of none, a claim naming an unknown store, idempotency keys and attempt budgets kept
per store, and transactions audited in their card's store."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import add_store, fund, gql

SHARED = "SHARED000001"
POS = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse", "GiftCardTransAdd"]
LOOKUP = """query L($code: String!, $store: ID) {
  giftcard(code: $code, storeId: $store) { results { id storeId balance } } }"""
TRANS = """mutation T($trans: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) { id giftcardId storeId balance } }"""
ADD = """mutation N($code: String!, $store: ID) {
  giftcardAdd(giftcard: {physicalCode: $code, storeId: $store}) { id storeId } }"""
LIST = """query G { giftcards { edges { node { id storeId } } } }"""


@pytest.fixture
def twins(services, seed) -> dict[str, int]:
    """The same PHYSICAL code on a card of store a ($10.00) and one of store b ($20.00)."""
    add_store(services, "a")
    add_store(services, "b")
    cards = {
        "a": seed({CodeType.PHYSICAL: SHARED}, store_id="a"),
        "b": seed({CodeType.PHYSICAL: SHARED}, store_id="b"),
    }
    fund(services.engine, cards["a"], 1000)
    fund(services.engine, cards["b"], 2000)
    return cards


def _spend(code: str = SHARED, store: str | None = None) -> dict:
    return {"codeType": "PHYSICAL", "code": code, "transType": "USE", "amount": "-1.00", "storeId": store}


def _balances(services) -> dict[str, int]:
    with services.engine.connect() as connection:
        rows = connection.execute(text("SELECT store_id, balance FROM giftcards ORDER BY id"))
        return {row[0]: int(row[1]) for row in rows}


def test_the_same_code_in_two_stores_reaches_each_stores_own_card(client, services, twins, mint):
    for store in ("a", "b"):
        till = mint(permissions=POS, sub="till", stores=[store])
        found = gql(client, LOOKUP, {"code": SHARED}, token=till)["data"]["giftcard"]["results"]
        assert [(card["id"], card["storeId"]) for card in found] == [(str(twins[store]), store)]
        spent = gql(client, TRANS, {"trans": _spend()}, token=till)["data"]["giftcardTransAdd"]
        assert (spent["giftcardId"], spent["storeId"]) == (str(twins[store]), store)
    # each card paid once, from its own balance
    assert _balances(services) == {"a": 900, "b": 1900}


def test_a_code_in_two_of_the_callers_stores_asks_for_store_id(client, services, twins, mint):
    both = mint(permissions=POS, sub="till", stores=["a", "b"])
    office = mint(roles=["admin"], sub="office", stores=["a", "b"])
    for body in (
        gql(client, LOOKUP, {"code": SHARED}, token=both),
        gql(client, TRANS, {"trans": _spend()}, token=office),
    ):
        (error,) = body["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", "storeId")
        assert "more than one of the token's stores" in error["message"]
    # an untrusted caller spending without its PIN checked learns nothing: the uniform refusal
    unsure = gql(client, TRANS, {"trans": _spend()}, token=both)
    assert unsure == gql(client, TRANS, {"trans": _spend("NOSUCHCODE99")}, token=both)
    assert _balances(services) == {"a": 1000, "b": 2000}
    # storeId says which
    found = gql(client, LOOKUP, {"code": SHARED, "store": "b"}, token=both)["data"]["giftcard"]["results"]
    assert [card["id"] for card in found] == [str(twins["b"])]
    spent = gql(client, TRANS, {"trans": _spend(store="a")}, token=both)["data"]["giftcardTransAdd"]
    assert spent["giftcardId"] == str(twins["a"])
    assert _balances(services) == {"a": 900, "b": 2000}


def test_a_transaction_is_audited_in_its_cards_store_whatever_stores_its_caller_has(
    client, services, twins, mint
):
    # given a back office of both stores and an operator of every store
    office = mint(roles=["admin"], sub="office", stores=["a", "b"])
    every = mint(roles=["admin"], permissions=["AllStores"], sub="operator")

    # when each spends from a card by its id, naming no store
    for token, store in ((office, "b"), (every, "a")):
        trans = {"giftcardId": str(twins[store]), "transType": "USE", "amount": "-1.00"}
        assert "errors" not in gql(client, TRANS, {"trans": trans}, token=token)

    # then each event is in its card's store
    with services.engine.connect() as connection:
        events = connection.execute(
            text("SELECT subject, giftcard_id, store_id FROM audit_events WHERE action = 'giftcardTransAdd'")
        ).all()
    assert sorted(tuple(event) for event in events) == [
        ("office", twins["b"], "b"),
        ("operator", twins["a"], "a"),
    ]


def test_a_code_is_unique_within_its_store_only(client, services, twins, mint):
    office = mint(roles=["admin"], sub="office", stores=["a", "b"])
    taken = gql(client, ADD, {"code": SHARED, "store": "a"}, token=office)
    assert taken["errors"][0]["extensions"]["code"] == "CONFLICT"
    add_store(services, "c")
    office_c = mint(roles=["admin"], sub="office", stores=["c"])
    added = gql(client, ADD, {"code": SHARED}, token=office_c)["data"]["giftcardAdd"]
    assert added["storeId"] == "c"
    # a caller of several stores says which a new card goes to
    body = gql(client, ADD, {"code": "FRESH0000001"}, token=office)
    assert (
        body["errors"][0]["extensions"] | {"code": "BAD_USER_INPUT", "field": "storeId"}
        == body["errors"][0]["extensions"]
    )


def test_all_stores_sees_every_store_and_none_sees_nothing(client, services, twins, mint):
    every = mint(roles=["admin"], permissions=["AllStores"], sub="operator")
    listed = gql(client, LIST, token=every)["data"]["giftcards"]["edges"]
    assert sorted(edge["node"]["storeId"] for edge in listed) == ["a", "b"]
    body = gql(client, LOOKUP, {"code": SHARED}, token=every)
    assert body["errors"][0]["extensions"]["field"] == "storeId"
    # an AllStores caller creating in a store that does not exist is told so
    missing = gql(client, ADD, {"code": "FRESH0000002", "store": "nowhere"}, token=every)
    assert missing["errors"][0]["extensions"] | {"code": "NOT_FOUND"} == missing["errors"][0]["extensions"]
    nobody = mint(roles=["admin"], sub="office", stores=[])
    assert gql(client, LIST, token=nobody) == {"data": {"giftcards": {"edges": []}}}
    assert gql(client, LOOKUP, {"code": SHARED}, token=nobody)["data"]["giftcard"]["results"] == []
    refused = gql(client, ADD, {"code": "FRESH0000003"}, token=nobody)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_claim_naming_an_unknown_store_is_refused_naming_the_claim(client, services, twins, mint):
    token = mint(permissions=POS, sub="till", stores=["a", "ghost"])
    for body in (
        gql(client, LOOKUP, {"code": SHARED}, token=token),
        gql(client, TRANS, {"trans": _spend(), "key": "k1"}, token=token),
    ):
        (error,) = body["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("FORBIDDEN", "stores")
        assert "ghost" in error["message"]
    assert _balances(services) == {"a": 1000, "b": 2000}
    # once the store exists, the same token works
    add_store(services, "ghost")
    services.stores.load()  # as a second after the store was added
    found = gql(client, LOOKUP, {"code": SHARED, "store": "a"}, token=token)["data"]["giftcard"]["results"]
    assert [card["id"] for card in found] == [str(twins["a"])]


def test_an_idempotency_key_never_answers_for_another_store(client, services, twins, mint):
    till_a = mint(permissions=POS, sub="till", stores=["a"])
    till_b = mint(permissions=POS, sub="till", stores=["b"])
    first = gql(client, TRANS, {"trans": _spend(), "key": "sale-1"}, token=till_a)["data"]["giftcardTransAdd"]
    other = gql(client, TRANS, {"trans": _spend(), "key": "sale-1"}, token=till_b)["data"]["giftcardTransAdd"]
    again = gql(client, TRANS, {"trans": _spend(), "key": "sale-1"}, token=till_a)["data"]["giftcardTransAdd"]
    assert (first["storeId"], other["storeId"]) == ("a", "b")
    assert again == first
    assert _balances(services) == {"a": 900, "b": 1900}


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_one_stores_misses_never_spend_another_stores_budget(client, services, twins, mint):
    till_a = mint(permissions=POS, sub="till", stores=["a"])
    till_b = mint(permissions=POS, sub="till", stores=["b"])
    codes = [gql(client, LOOKUP, {"code": f"MISSING00{n:03}"}, token=till_a) for n in range(3)]
    assert [body.get("errors", [{}])[0].get("extensions", {}).get("code") for body in codes] == [
        None,
        None,
        "RATE_LIMITED",
    ]
    found = gql(client, LOOKUP, {"code": SHARED}, token=till_b)["data"]["giftcard"]["results"]
    assert [card["id"] for card in found] == [str(twins["b"])]
