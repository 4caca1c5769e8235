"""The store API's calls, made here: create a card with a code and a starting balance, list cards
(limit, after, before, canceled ones, by code), update (enabled, code, expiry, and clearing them),
delete (= deactivate, history kept), and store scoping (a card of another store is invisible)."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import add_store, answered, error_codes, gql

# A store's back office: everything the store API does, codes of PHYSICAL and EXTERNAL type.
STORE_API = [
    "FindGiftCardByCode",
    "ListGiftCards",
    "UsePhysicalGiftCardCodes",
    "UseExternalGiftCardCodes",
    "CreateGiftCard",
    "EditGiftCard",
    "BlockGiftCard",
    "DeactivateGiftCard",
    "GiftCardTransAdd",
    "GiftCardTransUse",
    "ListGiftCardTransactions",
    "ViewAuditLog",
]
CARD = """id storeId state balance availableBalance initialValue currency sourceId note expiresAt
  createdBy updatedBy codes { codeType code isMasked }"""
ADD = f"""mutation A($giftcard: GiftCardAddInput!) {{ giftcardAdd(giftcard: $giftcard) {{ {CARD} }} }}"""
EDIT = f"""mutation E($giftcard: GiftCardEditInput!) {{ giftcardEdit(giftcard: $giftcard) {{ {CARD} }} }}"""
DEACTIVATE = f"""mutation D($id: ID!) {{ giftcardDeactivate(id: $id, reason: "deleted") {{ {CARD} }} }}"""
BY_ID = f"""query I($id: ID!) {{ giftcard(id: $id) {{ results {{ {CARD}
  transactions {{ transType status amount balanceAfter }} }} }} }}"""
BY_CODE = """query C($code: String!, $codeType: CodeType) {
  giftcard(code: $code, codeType: $codeType) { results { id } } }"""
LIST = """query L($first: Int, $after: String, $last: Int, $before: String, $filter: GiftCardFilter) {
  giftcards(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    edges { cursor node { id state } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
TRANS = """mutation T($trans: GiftCardTransInput!) {
  giftcardTransAdd(trans: $trans) { id status balance availableBalance } }"""
HISTORY = """query H($id: ID!) { giftcardTransactions(filter: {giftcardId: $id}) {
  edges { node { id transType status amount balanceBefore balanceAfter createdBy } } } }"""
AUDIT = """query U($id: ID!) { auditEvents(first: 100, filter: {giftcardId: $id}) {
  edges { node { action outcome subject giftcardId } } } }"""


def _add(client, token, **giftcard):
    return answered(gql(client, ADD, {"giftcard": giftcard}, token=token), "giftcardAdd")


def _edit(client, token, card_id, **giftcard):
    return answered(gql(client, EDIT, {"giftcard": {"id": card_id, **giftcard}}, token=token), "giftcardEdit")


def _card(client, token, card_id):
    results = answered(gql(client, BY_ID, {"id": card_id}, token=token), "giftcard")["results"]
    assert len(results) <= 1
    return results[0] if results else None


def _found(client, token, code, code_type=None):
    body = gql(client, BY_CODE, {"code": code, "codeType": code_type}, token=token)
    return [card["id"] for card in answered(body, "giftcard")["results"]]


def _page(client, token, **variables):
    page = answered(gql(client, LIST, variables, token=token), "giftcards")
    info = page["pageInfo"]
    return [edge["node"]["id"] for edge in page["edges"]], info


def _events(services, card_id):
    with services.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT event, detail, actor FROM giftcard_events WHERE giftcard_id = :id"),
            {"id": int(card_id)},
        ).all()
    return sorted(tuple(row) for row in rows)


def test_create_with_a_code_and_a_balance_gives_an_active_card_with_its_starting_balance(client, mint):
    shop = mint(permissions=STORE_API, sub="shop-admin")
    # given a card the store created before, empty
    earlier = _add(client, shop, physicalCode="STOREEARLY01")

    # when the store creates a card with its own code and a starting balance
    card = _add(client, shop, physicalCode="STORE-0001-AAAA", initialValue="25.00", sourceId="ORDER-7")

    # then it is ACTIVE with that balance, its code shown in full as stored (case and dashes dropped)
    assert card == {
        "id": card["id"],
        "storeId": "default",
        "state": "ACTIVE",
        "balance": "25.00",
        "availableBalance": "25.00",
        "initialValue": "25.00",
        "currency": "USD",
        "sourceId": "ORDER-7",
        "note": None,
        "expiresAt": None,
        "createdBy": "shop-admin",
        "updatedBy": "shop-admin",
        "codes": [{"codeType": "PHYSICAL", "code": "STORE0001AAAA", "isMasked": False}],
    }
    # and an EXTERNAL code works the same way
    external = _add(client, shop, externalCode="ext-778899", initialValue="5.50")
    assert (external["state"], external["balance"], external["codes"]) == (
        "ACTIVE",
        "5.50",
        [{"codeType": "EXTERNAL", "code": "EXT778899", "isMasked": False}],
    )
    # and the starting balance is one ADD in the ledger, by the creator
    history = answered(gql(client, HISTORY, {"id": card["id"]}, token=shop), "giftcardTransactions")
    assert [edge["node"] | {"id": None} for edge in history["edges"]] == [
        {
            "id": None,
            "transType": "ADD",
            "status": "COMPLETED",
            "amount": "25.00",
            "balanceBefore": "0.00",
            "balanceAfter": "25.00",
            "createdBy": "shop-admin",
        }
    ]
    # and the card is found by its code; the earlier card is untouched
    assert _found(client, shop, "store0001aaaa", "PHYSICAL") == [card["id"]]
    assert _card(client, shop, earlier["id"])["state"] == "PENDING"
    assert _card(client, shop, earlier["id"])["balance"] == "0.00"


def test_list_with_limit_after_before_canceled_cards_and_a_code(client, mint):
    shop = mint(permissions=STORE_API, sub="shop-admin")
    # given five cards, the third of them canceled (deactivated)
    ids = [_add(client, shop, physicalCode=f"STORELIST{n:04d}")["id"] for n in range(5)]
    answered(gql(client, DEACTIVATE, {"id": ids[2]}, token=shop), "giftcardDeactivate")
    listed = [ids[0], ids[1], ids[3], ids[4]]

    # when the store lists two at a time: the first page, then after its last card
    first, info = _page(client, shop, first=2)
    second, info2 = _page(client, shop, first=2, after=info["endCursor"])
    third, info3 = _page(client, shop, first=2, after=info2["endCursor"])
    # then the canceled card is left out, and each page says what lies on either side
    assert (first, second, third) == (listed[:2], listed[2:], [])
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (False, True)
    assert (info2["hasPreviousPage"], info2["hasNextPage"]) == (True, False)
    assert (info3["hasPreviousPage"], info3["hasNextPage"]) == (True, False)

    # when it pages back from the second page (before), and asks for the last page
    back, back_info = _page(client, shop, last=2, before=info2["startCursor"])
    last, last_info = _page(client, shop, last=1)
    assert (back, back_info["hasPreviousPage"], back_info["hasNextPage"]) == (listed[:2], False, True)
    assert (last, last_info["hasPreviousPage"], last_info["hasNextPage"]) == ([ids[4]], True, False)

    # when it includes canceled cards, the canceled one is listed in its place
    everything, _ = _page(client, shop, first=10, filter={"includeDeactivated": True})
    assert everything == ids
    between, _ = _page(client, shop, first=1, after=info["endCursor"], filter={"includeDeactivated": True})
    assert between == [ids[2]]

    # when it lists by code: only that card, whatever the case or dashes; an unknown code lists none
    assert _page(client, shop, filter={"code": "storelist-0003"})[0] == [ids[3]]
    assert _page(client, shop, filter={"code": "STORELIST0003", "codeType": "PHYSICAL"})[0] == [ids[3]]
    assert _page(client, shop, filter={"code": "STORELIST9999"})[0] == []
    # a canceled card's code lists it only with includeDeactivated
    assert _page(client, shop, filter={"code": "STORELIST0002"})[0] == []
    by_code = {"code": "STORELIST0002", "includeDeactivated": True}
    assert _page(client, shop, filter=by_code)[0] == [ids[2]]


def test_update_enabled_code_and_expiry_and_clear_them(client, mint, services):
    shop = mint(permissions=STORE_API, sub="shop-admin")
    editor = mint(permissions=STORE_API, sub="shop-editor")
    # given a funded card with a note and an empty one that was never funded
    card = _add(client, shop, physicalCode="STOREEDIT001", initialValue="10.00", note="VIP")
    empty = _add(client, shop, physicalCode="STOREEDIT002")

    # when the store disables it, then enables it again
    disabled = _edit(client, editor, card["id"], enabled=False)
    spend = {"giftcardId": card["id"], "transType": "USE", "amount": "-1.00"}
    refused = gql(client, TRANS, {"trans": spend}, token=shop)
    enabled = _edit(client, editor, card["id"], enabled=True)
    # then it is BLOCKED, then ACTIVE again, its balance kept; the last changer is recorded
    assert (disabled["state"], disabled["balance"], disabled["updatedBy"]) == (
        "BLOCKED",
        "10.00",
        "shop-editor",
    )
    assert error_codes(refused) == ["CARD_NOT_USABLE"]  # a disabled card takes nothing
    assert (enabled["state"], enabled["balance"]) == ("ACTIVE", "10.00")
    assert answered(gql(client, TRANS, {"trans": spend}, token=shop), "giftcardTransAdd")["balance"] == "9.00"
    # and a card that was never funded comes back PENDING
    assert _edit(client, editor, empty["id"], enabled=False)["state"] == "BLOCKED"
    assert _edit(client, editor, empty["id"], enabled=True)["state"] == "PENDING"

    # when the store gives the card a new code and an expiry
    changed = _edit(client, editor, card["id"], physicalCode="STOREEDIT101", expiresAt="2031-06-30T23:59:59Z")
    # then the new code replaces the old one, which no longer finds or lists the card
    assert changed["codes"] == [{"codeType": "PHYSICAL", "code": "STOREEDIT101", "isMasked": False}]
    assert (changed["expiresAt"], changed["note"], changed["balance"]) == (
        "2031-06-30T23:59:59+00:00",
        "VIP",
        "9.00",
    )
    assert _found(client, shop, "STOREEDIT101") == [card["id"]]
    assert _found(client, shop, "STOREEDIT001") == []
    assert _page(client, shop, filter={"code": "STOREEDIT001"})[0] == []

    # and fields left out keep their values
    sourced = _edit(client, editor, card["id"], sourceId="POS-1")
    assert sourced == changed | {"sourceId": "POS-1"}

    # when it clears the expiry and the note with an explicit null
    cleared = _edit(client, editor, card["id"], expiresAt=None, note=None)
    # then both are gone, and nothing else changed
    assert cleared == sourced | {"expiresAt": None, "note": None}
    assert _card(client, shop, card["id"])["note"] is None

    # when it clears the other card's code: that card has none left, and its code finds nothing
    assert _edit(client, editor, empty["id"], revokePhysicalCode=True)["codes"] == []
    assert _found(client, shop, "STOREEDIT002") == []
    # and the card's history holds each change, by who made it; the other card has its own
    assert _events(services, card["id"]) == sorted(
        [
            ("CREATED", None, "shop-admin"),
            ("BLOCKED", None, "shop-editor"),
            ("UNBLOCKED", None, "shop-editor"),
            ("CODE_REVOKED", "PHYSICAL", "shop-editor"),
            ("CODE_ADDED", "PHYSICAL", "shop-editor"),
            ("DETAILS_CHANGED", "expires_at", "shop-editor"),
            ("DETAILS_CHANGED", "source_id", "shop-editor"),
            ("DETAILS_CHANGED", "expires_at,note", "shop-editor"),
        ]
    )
    assert _events(services, empty["id"]) == sorted(
        [
            ("CREATED", None, "shop-admin"),
            ("BLOCKED", None, "shop-editor"),
            ("UNBLOCKED", None, "shop-editor"),
            ("CODE_REVOKED", "PHYSICAL", "shop-editor"),
        ]
    )


def test_delete_is_deactivate_and_the_history_is_kept(client, mint, services):
    shop = mint(permissions=STORE_API, sub="shop-admin")
    # given a card that was loaded, spent from, and holds an open authorization; and another card
    card = _add(client, shop, physicalCode="STOREDEL0001", initialValue="20.00")
    other = _add(client, shop, physicalCode="STOREDEL0002", initialValue="7.00")
    by_id = {"giftcardId": card["id"]}
    spent = answered(
        gql(client, TRANS, {"trans": {**by_id, "transType": "USE", "amount": "-4.00"}}, token=shop),
        "giftcardTransAdd",
    )
    hold = {**by_id, "transType": "USE", "amount": "-3.00", "authorizeOnly": True}
    held = answered(gql(client, TRANS, {"trans": hold}, token=shop), "giftcardTransAdd")
    assert (spent["balance"], held["status"], held["availableBalance"]) == ("16.00", "AUTHORIZED", "13.00")

    # when the store deletes it
    deleted = answered(gql(client, DEACTIVATE, {"id": card["id"]}, token=shop), "giftcardDeactivate")

    # then it is DEACTIVATED, not gone: its balance stays and its hold is released
    assert (deleted["state"], deleted["balance"], deleted["availableBalance"]) == (
        "DEACTIVATED",
        "16.00",
        "16.00",
    )
    kept = _card(client, shop, card["id"])
    assert kept["state"] == "DEACTIVATED"
    # and its transactions are still readable, the hold now CANCELLED
    assert kept["transactions"] == [
        {"transType": "USE", "status": "CANCELLED", "amount": "-3.00", "balanceAfter": "16.00"},
        {"transType": "USE", "status": "COMPLETED", "amount": "-4.00", "balanceAfter": "16.00"},
        {"transType": "ADD", "status": "COMPLETED", "amount": "20.00", "balanceAfter": "20.00"},
    ]
    history = answered(gql(client, HISTORY, {"id": card["id"]}, token=shop), "giftcardTransactions")
    assert [edge["node"]["id"] for edge in history["edges"]][1:] == [spent["id"], held["id"]]
    # and its events and audit trail too
    assert _events(services, card["id"]) == sorted(
        [
            ("CREATED", None, "shop-admin"),
            ("HOLDS_CANCELLED", "1", "shop-admin"),
            ("DEACTIVATED", "deleted", "shop-admin"),
        ]
    )
    audit = answered(gql(client, AUDIT, {"id": card["id"]}, token=shop), "auditEvents")
    assert [edge["node"]["action"] for edge in audit["edges"]] == [
        "giftcardAdd",
        "giftcardTransAdd",
        "giftcardTransAdd",
        "giftcardDeactivate",
    ]
    # and it is listed only when canceled cards are asked for; its code finds it no more for spending
    assert _page(client, shop)[0] == [other["id"]]
    assert _page(client, shop, filter={"includeDeactivated": True})[0] == [card["id"], other["id"]]
    refused = gql(client, TRANS, {"trans": {**by_id, "transType": "ADD", "amount": "1.00"}}, token=shop)
    assert refused["data"] == {"giftcardTransAdd": None} and error_codes(refused) == ["CARD_NOT_USABLE"]
    # and the other card is untouched
    assert (_card(client, shop, other["id"])["state"], _card(client, shop, other["id"])["balance"]) == (
        "ACTIVE",
        "7.00",
    )


def test_a_card_of_another_store_is_invisible(client, mint, services):
    add_store(services, "north")
    add_store(services, "south")
    north = mint(permissions=STORE_API, sub="north-admin", stores=["north"])
    south = mint(permissions=STORE_API, sub="south-admin", stores=["south"])
    # given a card of each store, under the same code ("unique to the store")
    ours = _add(client, north, physicalCode="STORESCOPE01", initialValue="9.00")
    theirs = _add(client, south, physicalCode="STORESCOPE01", initialValue="50.00")
    assert (ours["storeId"], theirs["storeId"]) == ("north", "south")

    # then the north store sees only its own card, by id, by code and in listings
    assert _card(client, north, theirs["id"]) is None
    assert _found(client, north, "STORESCOPE01") == [ours["id"]]
    assert _page(client, north, filter={"includeDeactivated": True})[0] == [ours["id"]]
    assert _page(client, north, filter={"code": "STORESCOPE01"})[0] == [ours["id"]]
    assert (
        answered(gql(client, HISTORY, {"id": theirs["id"]}, token=north), "giftcardTransactions")["edges"]
        == []
    )
    # and cannot change, spend or delete the south card: it reads as missing
    for query, variables in [
        (EDIT, {"giftcard": {"id": theirs["id"], "enabled": False}}),
        (DEACTIVATE, {"id": theirs["id"]}),
        (TRANS, {"trans": {"giftcardId": theirs["id"], "transType": "USE", "amount": "-1.00"}}),
    ]:
        body = gql(client, query, variables, token=north)
        assert error_codes(body) == ["NOT_FOUND"], body
    # and the south card is untouched, as the south store sees it
    seen = _card(client, south, theirs["id"])
    assert (seen["state"], seen["balance"], seen["updatedBy"]) == ("ACTIVE", "50.00", "south-admin")
    assert _found(client, south, "STORESCOPE01") == [theirs["id"]]
