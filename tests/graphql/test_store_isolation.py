"""The store-isolation matrix: for every query and mutation, a token of store A gets nothing of store B,
answered exactly as for a card, code, transaction or store that does not exist, and store B's rows
stay as they were."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import add_store, error_codes, fund, gql

ONLY_IN_B, MISSING_CODE = "ONLYINB00002", "NOSUCHCODE99"
MISSING_ID = "123456789"
B_MEMBER = "member-b"
POS = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse", "GiftCardTransAdd"]

LOOKUP = """query L($code: String, $id: ID, $member: String) {
  giftcard(code: $code, id: $id, memberId: $member) { results { id balance } limitedByPermission } }"""
LIST = """query G($filter: GiftCardFilter) { giftcards(filter: $filter) { edges { node { id storeId } } } }"""
HISTORY = """query H($filter: GiftCardTransactionFilter) {
  giftcardTransactions(filter: $filter) { edges { node { id giftcardId storeId } } } }"""
AUDIT = """query A($filter: AuditEventFilter) { auditEvents(first: 100, filter: $filter) {
  edges { node { action giftcardId storeId } } } }"""
RESERVATIONS = """query R { giftcardReservations(requestName: "batch") { id count } }"""
TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id giftcardId } }"""
CAPTURE = """mutation C($id: ID!) { giftcardTransCapture(id: $id) { id } }"""
CANCEL = """mutation X($id: ID!) { giftcardTransCancel(id: $id) { id } }"""
EDIT = """mutation E($id: ID!) { giftcardEdit(giftcard: {id: $id, note: "n"}) { id } }"""
BLOCK = """mutation B($id: ID!) { giftcardBlock(id: $id) { id } }"""
UNBLOCK = """mutation U($id: ID!) { giftcardUnblock(id: $id) { id } }"""
DEACTIVATE = """mutation D($id: ID!) { giftcardDeactivate(id: $id) { id } }"""
ADD = """mutation N($store: ID) { giftcardAdd(giftcard: {externalCode: "NEWCODE12345", storeId: $store}) {
  id storeId } }"""
RESERVE = """mutation V($store: ID) {
  giftcardReserveCodes(count: 1, agency: "print", requestName: "batch", storeId: $store) { id } }"""


@pytest.fixture
def world(services, seed, client, mint) -> dict:
    """Stores a and b; card A in a, card B in b (with a code only b has, a member, an open
    authorization, a reservation and audit events), both funded with $10.00."""
    add_store(services, "a")
    add_store(services, "b")
    card_a = seed({CodeType.PHYSICAL: "INA000000001"}, store_id="a")
    card_b = seed({CodeType.PHYSICAL: ONLY_IN_B}, member_id=B_MEMBER, store_id="b")
    fund(services.engine, card_a, 1000)
    fund(services.engine, card_b, 1000)
    office_b = mint(roles=["admin"], sub="office", stores=["b"])
    held = gql(client, TRANS, {"trans": _by_id(card_b, authorize=True)}, token=office_b)
    assert "errors" not in held, held
    assert "errors" not in gql(client, RESERVE, {}, token=office_b)
    return {
        "a": card_a,
        "b": card_b,
        "hold_b": held["data"]["giftcardTransAdd"]["id"],
        "office_a": mint(roles=["admin"], sub="office", stores=["a"]),
        "office_b": office_b,
        "till_a": mint(permissions=POS, sub="till", stores=["a"]),
    }


def _by_id(card_id: int | str, *, authorize: bool = False) -> dict:
    return {"giftcardId": str(card_id), "transType": "USE", "amount": "-1.00", "authorizeOnly": authorize}


def _by_code(code: str) -> dict:
    return {"codeType": "PHYSICAL", "code": code, "transType": "USE", "amount": "-1.00"}


def _same(body: dict, missing: dict, *ids: object) -> None:
    """``body`` reads as ``missing`` does, once the ids each names are put aside."""
    pattern = "|".join(re.escape(str(value)) for value in ids)
    assert re.sub(pattern, "ID", str(body)) == re.sub(pattern, "ID", str(missing))


def _rows_of_b(services, card_b: int) -> tuple:
    with services.engine.connect() as connection:
        card = connection.execute(
            text("SELECT balance, state, note, member_id FROM giftcards WHERE id = :id"), {"id": card_b}
        ).one()
        counts = [
            connection.execute(text(f"SELECT count(*) FROM {table} WHERE store_id = 'b'")).scalar_one()
            for table in ("giftcard_transactions", "giftcard_events", "giftcard_codes", "giftcards")
        ]
    return tuple(card), tuple(counts)


def test_lookups_find_nothing_of_another_store(client, services, world):
    office_a, card_b = world["office_a"], world["b"]
    for variables, missing in (
        ({"code": ONLY_IN_B}, {"code": MISSING_CODE}),
        ({"id": str(card_b)}, {"id": MISSING_ID}),
        ({"member": B_MEMBER}, {"member": "member-nobody"}),
    ):
        body = gql(client, LOOKUP, variables, token=office_a)
        assert body == gql(client, LOOKUP, missing, token=office_a)
        assert body == {"data": {"giftcard": {"results": [], "limitedByPermission": False}}}
    # and an untrusted till of store a, by code
    till_a = world["till_a"]
    assert gql(client, LOOKUP, {"code": ONLY_IN_B}, token=till_a) == gql(
        client, LOOKUP, {"code": MISSING_CODE}, token=till_a
    )


def test_listings_history_audit_and_reservations_show_nothing_of_another_store(client, services, world):
    office_a, card_a, card_b = world["office_a"], world["a"], world["b"]
    cards = gql(client, LIST, {}, token=office_a)["data"]["giftcards"]["edges"]
    assert [edge["node"] for edge in cards] == [{"id": str(card_a), "storeId": "a"}]
    assert gql(client, LIST, {"filter": {"storeId": "b"}}, token=office_a)["data"]["giftcards"]["edges"] == []
    history = gql(client, HISTORY, {}, token=office_a)["data"]["giftcardTransactions"]["edges"]
    assert {edge["node"]["giftcardId"] for edge in history} == {str(card_a)}
    for filter_b, filter_missing in (
        ({"giftcardId": str(card_b)}, {"giftcardId": MISSING_ID}),
        ({"codeType": "PHYSICAL", "code": ONLY_IN_B}, {"codeType": "PHYSICAL", "code": MISSING_CODE}),
        ({"storeId": "b"}, {"storeId": "nope"}),
    ):
        body = gql(client, HISTORY, {"filter": filter_b}, token=office_a)
        assert body == gql(client, HISTORY, {"filter": filter_missing}, token=office_a)
        assert body["data"]["giftcardTransactions"]["edges"] == []
    events = gql(client, AUDIT, {}, token=office_a)["data"]["auditEvents"]["edges"]
    assert all(edge["node"]["storeId"] == "a" for edge in events)
    assert str(card_b) not in str(events)
    # the same subject reserved codes in store b: store a lists none of them
    assert gql(client, RESERVATIONS, token=office_a) == {"data": {"giftcardReservations": []}}


def test_transactions_on_another_stores_card_read_as_on_a_missing_one(client, services, world):
    before = _rows_of_b(services, world["b"])
    office_a, till_a = world["office_a"], world["till_a"]
    by_id = gql(client, TRANS, {"trans": _by_id(world["b"])}, token=office_a)
    _same(by_id, gql(client, TRANS, {"trans": _by_id(MISSING_ID)}, token=office_a), world["b"], MISSING_ID)
    assert by_id["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    for token in (office_a, till_a):
        by_code = gql(client, TRANS, {"trans": _by_code(ONLY_IN_B)}, token=token)
        assert by_code == gql(client, TRANS, {"trans": _by_code(MISSING_CODE)}, token=token)
    for operation in (CAPTURE, CANCEL):
        body = gql(client, operation, {"id": world["hold_b"]}, token=office_a)
        _same(body, gql(client, operation, {"id": MISSING_ID}, token=office_a), world["hold_b"], MISSING_ID)
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert _rows_of_b(services, world["b"]) == before


def test_a_code_revoked_in_another_store_reads_as_a_missing_one(client, services, seed, world):
    # given a code revoked in store b (its own store's back office is told it was revoked)
    seed({CodeType.PHYSICAL: "REVOKEDINB01"}, store_id="b", revoked={CodeType.PHYSICAL})
    office_b = world["office_b"]
    revoked = gql(client, TRANS, {"trans": _by_code("REVOKEDINB01")}, token=office_b)
    assert revoked["errors"][0]["message"] == "code: the code was revoked"
    before = _rows_of_b(services, world["b"])
    # when store a's back office, trusted too, debits by it
    body = gql(client, TRANS, {"trans": _by_code("REVOKEDINB01")}, token=world["office_a"])
    # then it is told what a missing code gets, and nothing of b's changed
    assert body == gql(client, TRANS, {"trans": _by_code(MISSING_CODE)}, token=world["office_a"])
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert _rows_of_b(services, world["b"]) == before


def test_a_code_filed_under_another_store_than_its_card_moves_nothing(client, services, world):
    # given store b's card with its code's row saying store a (a code is always in its card's
    # store: a row that disagrees is a fault, and the card's own store decides)
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcard_codes SET store_id = 'a' WHERE giftcard_id = :id"), {"id": world["b"]}
        )
    before = _rows_of_b(services, world["b"])
    # when store a's till and back office debit by that code
    till = gql(client, TRANS, {"trans": _by_code(ONLY_IN_B)}, token=world["till_a"])
    office = gql(client, TRANS, {"trans": _by_code(ONLY_IN_B)}, token=world["office_a"])
    # then the till gets its uniform refusal and the back office is told the card is not found
    assert till == gql(client, TRANS, {"trans": _by_code(MISSING_CODE)}, token=world["till_a"])
    assert error_codes(office) == ["NOT_FOUND"]
    # and nothing of b's moved
    assert _rows_of_b(services, world["b"]) == before


def test_card_changes_on_another_stores_card_read_as_on_a_missing_one(client, services, world):
    before = _rows_of_b(services, world["b"])
    office_a = world["office_a"]
    for operation in (EDIT, BLOCK, UNBLOCK, DEACTIVATE):
        body = gql(client, operation, {"id": str(world["b"])}, token=office_a)
        _same(body, gql(client, operation, {"id": MISSING_ID}, token=office_a), world["b"], MISSING_ID)
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert _rows_of_b(services, world["b"]) == before


def test_nothing_is_created_in_another_store(client, services, world):
    before = _rows_of_b(services, world["b"])
    office_a = world["office_a"]
    for operation in (ADD, RESERVE):
        body = gql(client, operation, {"store": "b"}, token=office_a)
        assert body == gql(client, operation, {"store": "nope"}, token=office_a)
        assert (
            body["errors"][0]["extensions"] | {"code": "NOT_FOUND", "field": "storeId"}
            == body["errors"][0]["extensions"]
        )
    # and with no storeId, a card goes to the token's one store
    added = gql(client, ADD, {}, token=office_a)["data"]["giftcardAdd"]
    assert added["storeId"] == "a"
    assert _rows_of_b(services, world["b"]) == before
