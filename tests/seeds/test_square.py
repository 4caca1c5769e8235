"""Square's gift card calls, made here: list cards by type, state and customer; create a PENDING card
with an idempotency key at a location; retrieve a card by id, by code and by a payment token (the
Web Payments SDK's nonce) and spend the token once; link and unlink a customer; activities with their
location_id."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import answered, error_codes, gql

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
AUDIT = (
    """query U($id: ID!) { auditEvents(filter: {giftcardId: $id}) { edges { node { action outcome } } } }"""
)
ACTIVITIES = """query H($filter: GiftCardTransactionFilter) { giftcardTransactions(filter: $filter) {
  edges { node { id giftcardId transType status amount locationId } } } }"""


def _add(client, token, key=None, **giftcard):
    return answered(gql(client, ADD, {"giftcard": giftcard, "key": key}, token=token), "giftcardAdd")


def _edit(client, token, card_id, **giftcard):
    return answered(gql(client, EDIT, {"giftcard": {"id": card_id, **giftcard}}, token=token), "giftcardEdit")


def _find(client, bearer, **by):
    return answered(gql(client, FIND, by, token=bearer), "giftcard")


def _listed(client, token, **filter_):
    page = answered(gql(client, LIST, {"filter": filter_}, token=token), "giftcards")
    return [edge["node"]["id"] for edge in page["edges"]]


def _trans(client, bearer, key=None, **trans):
    return gql(client, TRANS, {"trans": trans, "key": key}, token=bearer)


def _activities(client, token, **filter_):
    history = answered(gql(client, ACTIVITIES, {"filter": filter_}, token=token), "giftcardTransactions")
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
    assert _listed(client, seller, hasPhysicalCode=False, state="ACTIVE", memberId="CUST-1") == [
        digital["id"]
    ]
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
    audit = answered(gql(client, AUDIT, {"id": created["id"]}, token=seller), "auditEvents")
    assert [edge["node"] for edge in audit["edges"]] == [
        {"action": "giftcardAdd", "outcome": "OK"},
        {"action": "giftcardAdd", "outcome": "REPLAYED"},
    ]
    # and the same key with another card is a conflict that writes nothing
    other = _add_refused(client, seller, key="create-1", physicalCode="SQNEW0000002", locationId="LOC-1")
    assert other == ["CONFLICT"]
    assert _count(services, "SELECT count(*) FROM giftcards") == 1

    # when the card is activated by its first load at the location
    load = answered(
        _trans(client, seller, giftcardId=created["id"], transType="ADD", amount="25.00", locationId="LOC-1"),
        "giftcardTransAdd",
    )
    assert (load["status"], load["balance"], load["locationId"]) == ("COMPLETED", "25.00", "LOC-1")
    found = _find(client, seller, id=created["id"])["results"][0]
    assert (found["state"], found["balance"], found["locationId"]) == ("ACTIVE", "25.00", "LOC-1")


def _add_refused(client, token, key, **giftcard):
    body = gql(client, ADD, {"giftcard": giftcard, "key": key}, token=token)
    assert body["data"] == {"giftcardAdd": None}
    return error_codes(body)


def test_retrieve_by_id_by_code_and_by_a_payment_token_spent_once(client, mint, services):
    seller = mint(permissions=SELLER, sub="seller")
    front = mint(permissions=FRONT, sub="checkout-page")
    charger = mint(permissions=CHARGER, sub="checkout-server")
    # given a card with a PIN, and another card
    card = _add(client, seller, physicalCode="SQGET0000001", physicalPin="2468", initialValue="30.00")
    other = _add(client, seller, physicalCode="SQGET0000002", initialValue="8.00")

    # then the seller retrieves it by id and by code
    assert _find(client, seller, id=card["id"]) == {"limitedByPermission": False, "results": [card]}
    by_code = _find(client, seller, code="sqget-0000-001", codeType="PHYSICAL")
    assert by_code == {"limitedByPermission": False, "results": [card]}

    # when the checkout page exchanges the code and PIN for a token (a wrong PIN gets none)
    wrong = gql(client, TOKENIZE, {"code": "SQGET0000001", "pin": "1111"}, token=front)
    assert wrong["data"] == {"giftcardTokenize": None} and error_codes(wrong) == ["CARD_NOT_USABLE"]
    issued = answered(
        gql(client, TOKENIZE, {"code": "SQGET0000001", "pin": "2468"}, token=front), "giftcardTokenize"
    )
    nonce = issued["token"]
    # then the server retrieves the card by it, as often as it likes, without using it up, and
    # never sees the code the token stands for: it is masked to its last four characters
    (code,) = card["codes"]
    masked = {**card, "codes": [{**code, "code": "********0001", "isMasked": True}]}
    for _ in range(2):
        assert _find(client, charger, token=nonce) == {"limitedByPermission": True, "results": [masked]}

    # when the server charges the card by the token, and then tries again with it
    charged = answered(
        _trans(client, charger, token=nonce, transType="USE", amount="-12.50"), "giftcardTransAdd"
    )
    again = _trans(client, charger, token=nonce, transType="USE", amount="-12.50")
    # then the first charge is taken, the second refused: the token is used up
    assert (charged["status"], charged["amount"], charged["balance"]) == ("COMPLETED", "-12.50", "17.50")
    assert again["data"] == {"giftcardTransAdd": None} and error_codes(again) == ["CARD_NOT_USABLE"]
    assert _find(client, charger, token=nonce) == {"limitedByPermission": False, "results": []}
    # and the card was charged once; the other card is untouched
    assert _find(client, seller, id=card["id"])["results"][0]["balance"] == "17.50"
    assert [row["amount"] for row in _activities(client, seller, giftcardId=card["id"])] == [
        "30.00",
        "-12.50",
    ]
    assert _find(client, seller, id=other["id"])["results"] == [other]
    assert _count(services, "SELECT count(*) FROM payment_tokens WHERE used_at IS NOT NULL") == 1


def test_link_and_unlink_a_customer(client, mint, services):
    seller = mint(permissions=SELLER, sub="seller")
    # given a card without a customer, and another card of the customer with its own PERSONAL code
    card = _add(client, seller, physicalCode="SQLINK000001", initialValue="20.00")
    kept = _add(client, seller, memberId="CUST-9", addPersonalCode=True)
    assert card["memberId"] is None

    # when the seller links the customer to the card and gives it a PERSONAL code
    linked = _edit(client, seller, card["id"], memberId="CUST-9", addPersonalCode=True)
    # then the card is the customer's; the new code is shown in full this once, masked afterwards
    physical, personal = linked["codes"]
    assert (linked["memberId"], physical["code"], personal["codeType"], personal["isMasked"]) == (
        "CUST-9",
        "SQLINK000001",
        "PERSONAL",
        False,
    )
    assert _find(client, seller, id=card["id"])["results"][0]["codes"][1] == personal | {
        "code": "*" * 16 + personal["code"][-4:],
        "isMasked": True,
    }
    assert sorted(found["id"] for found in _find(client, seller, memberId="CUST-9")["results"]) == sorted(
        [kept["id"], card["id"]]
    )
    assert _listed(client, seller, memberId="CUST-9") == [card["id"], kept["id"]]
    assert _find(client, seller, code=personal["code"])["results"][0]["id"] == card["id"]

    # when the seller unlinks the customer
    unlinked = _edit(client, seller, card["id"], unlinkMember=True)
    # then the card has no customer and its PERSONAL code is revoked: it finds nothing any more
    assert (unlinked["memberId"], unlinked["codes"]) == (None, [physical | {"isMasked": False}])
    assert _find(client, seller, code=personal["code"], codeType="PERSONAL")["results"] == []
    assert _listed(client, seller, memberId="CUST-9") == [kept["id"]]
    # and the balance and the PHYSICAL code stay; the customer's other card keeps its code
    assert _find(client, seller, code="SQLINK000001")["results"][0]["balance"] == "20.00"
    assert _find(client, seller, code=kept["codes"][0]["code"])["results"][0]["id"] == kept["id"]
    # and the card's history says what happened
    with services.engine.connect() as connection:
        events = connection.execute(
            text("SELECT event, detail FROM giftcard_events WHERE giftcard_id = :id"), {"id": int(card["id"])}
        ).all()
    assert sorted(tuple(row) for row in events) == sorted(
        [
            ("CREATED", None),
            ("MEMBER_LINKED", "CUST-9"),
            ("CODE_ADDED", "PERSONAL"),
            ("MEMBER_UNLINKED", "CUST-9"),
            ("CODE_REVOKED", "PERSONAL"),
        ]
    )


def test_activities_carry_their_location_and_are_listed_by_it(client, mint):
    seller = mint(permissions=SELLER, sub="seller")
    # given a card issued at LOC-A, and another card
    card = _add(client, seller, physicalCode="SQLOC0000001", initialValue="50.00", locationId="LOC-A")["id"]
    other = _add(client, seller, physicalCode="SQLOC0000002", initialValue="9.00")["id"]

    # when it is redeemed at LOC-B, authorized at LOC-B and captured at LOC-C, loaded with no location
    use = answered(
        _trans(client, seller, giftcardId=card, transType="USE", amount="-5.00", locationId="LOC-B"),
        "giftcardTransAdd",
    )
    hold = _trans(
        client,
        seller,
        giftcardId=card,
        transType="USE",
        amount="-10.00",
        locationId="LOC-B",
        authorizeOnly=True,
    )
    held = answered(hold, "giftcardTransAdd")
    captured = answered(
        gql(client, CAPTURE, {"id": held["id"], "locationId": "LOC-C"}, token=seller), "giftcardTransCapture"
    )
    answered(_trans(client, seller, giftcardId=card, transType="ADD", amount="3.00"), "giftcardTransAdd")
    elsewhere = answered(
        _trans(client, seller, giftcardId=other, transType="USE", amount="-1.00", locationId="LOC-B"),
        "giftcardTransAdd",
    )

    # then each activity says where it happened; the capture moved the hold's location
    assert (use["locationId"], captured["locationId"], captured["balance"]) == ("LOC-B", "LOC-C", "35.00")
    history = _activities(client, seller, giftcardId=card)
    assert [(row["transType"], row["status"], row["amount"], row["locationId"]) for row in history] == [
        ("ADD", "COMPLETED", "50.00", "LOC-A"),
        ("USE", "COMPLETED", "-5.00", "LOC-B"),
        ("USE", "COMPLETED", "-10.00", "LOC-C"),
        ("ADD", "COMPLETED", "3.00", None),
    ]
    # and the activities of a location are listed, across cards, and of one card
    assert [row["id"] for row in _activities(client, seller, locationId="LOC-B")] == [
        use["id"],
        elsewhere["id"],
    ]
    assert [row["id"] for row in _activities(client, seller, locationId="LOC-B", giftcardId=card)] == [
        use["id"]
    ]
    assert [row["id"] for row in _activities(client, seller, locationId="LOC-C")] == [held["id"]]
    assert [row["amount"] for row in _activities(client, seller, locationId="LOC-A")] == ["50.00"]
    assert _activities(client, seller, locationId="loc-a") == []
