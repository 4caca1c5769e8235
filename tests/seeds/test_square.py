"""Square's gift card calls, made here: list cards by type, state and customer; create a PENDING card
with an idempotency key at a location; retrieve a card by id, by code and by a payment token (the
Web Payments SDK's nonce) and spend the token once; link and unlink a customer; activities with their
location_id."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import error_codes, gql

# The seller's back end: Square's gift card API, without seeing PERSONAL codes in full.
SELLER = [
    "FindGiftCardByCode",
    "ListGiftCards",
    "UsePhysicalGiftCardCodes",
    "UseExternalGiftCardCodes",
    "UseCryptoGiftCardCodes",
    "CreateGiftCard",
    "EditGiftCard",
    "BlockGiftCard",
    "GiftCardTransAdd",
    "GiftCardTransUse",
    "ListGiftCardTransactions",
    "ViewAuditLog",
]
# The checkout page (Web Payments SDK) and the back end that charges by its nonce.
FRONT = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes"]
CHARGER = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse"]

CARD = "id state balance memberId locationId codes { codeType code isMasked }"
ADD = f"""mutation A($giftcard: GiftCardAddInput!, $key: String) {{
  giftcardAdd(giftcard: $giftcard, idempotencyKey: $key) {{ {CARD} }} }}"""
EDIT = f"""mutation E($giftcard: GiftCardEditInput!) {{ giftcardEdit(giftcard: $giftcard) {{ {CARD} }} }}"""
FIND = f"""query F($id: ID, $code: String, $codeType: CodeType, $memberId: String, $token: String) {{
  giftcard(id: $id, code: $code, codeType: $codeType, memberId: $memberId, token: $token) {{
    limitedByPermission results {{ {CARD} }} }} }}"""
LIST = """query L($filter: GiftCardFilter) {
  giftcards(first: 100, filter: $filter) { limitedByPermission edges { node { id } } } }"""
TOKENIZE = """mutation T($code: String!, $pin: String) {
  giftcardTokenize(code: $code, codeType: PHYSICAL, pin: $pin) { token expiresAt } }"""
TRANS = """mutation S($trans: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) { id status amount balance locationId } }"""
CAPTURE = """mutation C($id: ID!, $locationId: String) {
  giftcardTransCapture(id: $id, locationId: $locationId) { id status amount balance locationId } }"""
ACTIVITIES = """query H($filter: GiftCardTransactionFilter) { giftcardTransactions(filter: $filter) {
  edges { node { id giftcardId transType status amount locationId } } } }"""


def _ok(body, field):
    assert "errors" not in body, body
    return body["data"][field]


def _add(client, token, key=None, **giftcard):
    return _ok(gql(client, ADD, {"giftcard": giftcard, "key": key}, token=token), "giftcardAdd")


def _edit(client, token, card_id, **giftcard):
    return _ok(gql(client, EDIT, {"giftcard": {"id": card_id, **giftcard}}, token=token), "giftcardEdit")


def _find(client, token, **by):
    return _ok(gql(client, FIND, by, token=token), "giftcard")


def _listed(client, token, **filter_):
    page = _ok(gql(client, LIST, {"filter": filter_}, token=token), "giftcards")
    return [edge["node"]["id"] for edge in page["edges"]]


def _trans(client, token, key=None, **trans):
    return gql(client, TRANS, {"trans": trans, "key": key}, token=token)


def _activities(client, token, **filter_):
    history = _ok(gql(client, ACTIVITIES, {"filter": filter_}, token=token), "giftcardTransactions")
    return [edge["node"] for edge in history["edges"]]


def _count(services, sql, **params):
    with services.engine.connect() as connection:
        return connection.execute(text(sql), params).scalar_one()


def test_list_cards_by_type_state_and_customer(client, mint):
    seller = mint(permissions=SELLER, sub="seller")
    # given PHYSICAL and DIGITAL cards in every state, two of them the customer's
    active_physical = _add(client, seller, physicalCode="SQPHYS000001", initialValue="10.00")["id"]
    digital = _add(client, seller, memberId="CUST-1", addPersonalCode=True, initialValue="15.00")
    pending_physical = _add(client, seller, physicalCode="SQPHYS000002", memberId="CUST-1")["id"]
    pending_digital = _add(client, seller, externalCode="SQEXT0000001")["id"]
    blocked = _add(client, seller, physicalCode="SQPHYS000003", initialValue="5.00", enabled=False)
    assert blocked["state"] == "BLOCKED" and digital["state"] == "ACTIVE"

    # then each filter lists exactly its cards, in creation order
    assert _listed(client, seller, hasPhysicalCode=True) == [active_physical, pending_physical, blocked["id"]]
    assert _listed(client, seller, hasPhysicalCode=False) == [digital["id"], pending_digital]
    assert _listed(client, seller, state="ACTIVE") == [active_physical, digital["id"]]
    assert _listed(client, seller, state="PENDING") == [pending_physical, pending_digital]
    assert _listed(client, seller, state="BLOCKED") == [blocked["id"]]
    assert _listed(client, seller, memberId="CUST-1") == [digital["id"], pending_physical]
    assert _listed(client, seller, memberId="CUST-2") == []
    # and they combine
    assert _listed(client, seller, hasPhysicalCode=False, state="ACTIVE", memberId="CUST-1") == [digital["id"]]
    assert _listed(client, seller, hasPhysicalCode=True, state="PENDING", memberId="CUST-1") == [
        pending_physical
    ]
    # and the customer's PERSONAL code is masked to the seller, in full to a token that may see it
    (personal,) = digital["codes"]
    shown = _find(client, seller, id=digital["id"])
    assert shown["limitedByPermission"] is True
    assert shown["results"][0]["codes"] == [
        {"codeType": "PERSONAL", "code": "*" * 16 + personal["code"][-4:], "isMasked": True}
    ]
    admin = mint(roles=["admin"], sub="owner")
    assert _find(client, admin, id=digital["id"])["results"][0]["codes"] == [personal | {"isMasked": False}]


def test_create_a_pending_card_with_an_idempotency_key_at_a_location(client, mint, services):
    seller = mint(permissions=SELLER, sub="seller")
    # when the seller creates a card at a location with an idempotency key, and retries it
    giftcard = {"physicalCode": "SQNEW0000001", "locationId": "LOC-1"}
    created = _add(client, seller, key="create-1", **giftcard)
    retried = _add(client, seller, key="create-1", **giftcard)

    # then the card is PENDING and empty, at that location; the retry answers the same card
    assert created == {
        "id": created["id"],
        "state": "PENDING",
        "balance": "0.00",
        "memberId": None,
        "locationId": "LOC-1",
        "codes": [{"codeType": "PHYSICAL", "code": "SQNEW0000001", "isMasked": False}],
    }
    assert retried == created
    # and wrote no second card, event or transaction
    assert _count(services, "SELECT count(*) FROM giftcards") == 1
    assert _count(services, "SELECT count(*) FROM giftcard_events") == 1
    assert _count(services, "SELECT count(*) FROM giftcard_transactions") == 0
    # and the same key with another card is a conflict that writes nothing
    other = _add_refused(client, seller, key="create-1", physicalCode="SQNEW0000002", locationId="LOC-1")
    assert other == ["CONFLICT"]
    assert _count(services, "SELECT count(*) FROM giftcards") == 1

    # when the card is activated by its first load at the location
    load = _ok(_trans(client, seller, giftcardId=created["id"], transType="ADD", amount="25.00", locationId="LOC-1"),
               "giftcardTransAdd")
    assert (load["status"], load["balance"], load["locationId"]) == ("COMPLETED", "25.00", "LOC-1")
    found = _find(client, seller, id=created["id"])["results"][0]
    assert (found["state"], found["balance"], found["locationId"]) == ("ACTIVE", "25.00", "LOC-1")


def _add_refused(client, token, key, **giftcard):
    body = gql(client, ADD, {"giftcard": giftcard, "key": key}, token=token)
    assert body["data"] == {"giftcardAdd": None}
    return error_codes(body)
