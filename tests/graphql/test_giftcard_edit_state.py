"""giftcardEdit's enabled (block and unblock as the dedicated mutations do, BlockGiftCard as well,
all of the edit or nothing) and every card's updatedBy: who made its last change."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import error_codes, fund, gql

EDIT = """mutation E($giftcard: GiftCardEditInput!) {
  giftcardEdit(giftcard: $giftcard) { id state note usableFrom expiresAt updatedBy codes { codeType } } }"""
CARD = """query C($id: ID!) { giftcard(id: $id) { results {
  state note usableFrom expiresAt updatedAt updatedBy codes { codeType } } } }"""
EDITOR = ["EditGiftCard", "ListGiftCards", "UsePhysicalGiftCardCodes", "UseExternalGiftCardCodes"]


@pytest.fixture
def editor(mint):
    """May edit and block cards."""
    return mint(permissions=[*EDITOR, "BlockGiftCard"], sub="editor")


def _edit(client, token, card_id, **giftcard):
    return gql(client, EDIT, {"giftcard": {"id": str(card_id), **giftcard}}, token=token)


def _card(client, token, card_id):
    (card,) = gql(client, CARD, {"id": str(card_id)}, token=token)["data"]["giftcard"]["results"]
    return card


def _rows(services, sql, card_id):
    with services.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), {"id": card_id}).all()]


def _events(services, card_id):
    return _rows(
        services,
        "SELECT event, detail, actor FROM giftcard_events WHERE giftcard_id = :id ORDER BY id",
        card_id,
    )


def _set_state(services, card_id, state):
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET state = :s WHERE id = :id"), {"s": state, "id": card_id}
        )


@pytest.mark.parametrize(
    ("start", "funded", "enabled", "end", "event"),
    [
        ("ACTIVE", True, False, "BLOCKED", "BLOCKED"),
        ("PENDING", False, False, "BLOCKED", "BLOCKED"),
        ("BLOCKED", False, True, "PENDING", "UNBLOCKED"),  # never funded
        ("BLOCKED", True, True, "ACTIVE", "UNBLOCKED"),
    ],
)
def test_enabled_blocks_and_unblocks_as_the_dedicated_mutations(
    client, editor, seed, services, start, funded, enabled, end, event
):
    card_id = seed({CodeType.PHYSICAL: "STATEPHYS001"})
    other = seed({CodeType.PHYSICAL: "STATEPHYS002"})
    if funded:
        fund(services.engine, card_id, 500)
    _set_state(services, card_id, start)
    body = _edit(client, editor, card_id, enabled=enabled)
    assert body["data"]["giftcardEdit"]["state"] == end
    assert body["data"]["giftcardEdit"]["updatedBy"] == "editor"
    assert _events(services, card_id) == [(event, None, "editor")]
    assert _card(client, editor, other)["state"] == "PENDING"  # no other card moves


@pytest.mark.parametrize(("start", "enabled"), [("ACTIVE", True), ("PENDING", True), ("BLOCKED", False)])
def test_enabled_in_the_state_the_card_is_in_changes_nothing(client, editor, seed, services, start, enabled):
    card_id = seed({CodeType.PHYSICAL: "SAMEPHYS0001"})
    _set_state(services, card_id, start)
    before = _card(client, editor, card_id)
    body = _edit(client, editor, card_id, enabled=enabled)
    assert body["data"]["giftcardEdit"]["state"] == start
    assert _card(client, editor, card_id) == before  # updatedAt and updatedBy ("seed": none) too
    assert before["updatedBy"] is None and _events(services, card_id) == []


def test_enabled_needs_block_gift_card_and_nothing_of_the_edit_is_written(client, mint, seed, services):
    card_id = seed({CodeType.PHYSICAL: "PERMPHYS0001"})
    token = mint(permissions=EDITOR, sub="clerk")
    before = _card(client, token, card_id)
    body = _edit(client, token, card_id, enabled=False, note="lost", externalCode="PERMEXTN0001")
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["message"] == "the token lacks the BlockGiftCard permission"
    assert body["data"]["giftcardEdit"] is None
    assert _card(client, token, card_id) == before and _events(services, card_id) == []
    # the rest of the edit alone is allowed
    body = _edit(client, token, card_id, note="lost", externalCode="PERMEXTN0001")
    assert (body["data"]["giftcardEdit"]["note"], body["data"]["giftcardEdit"]["state"]) == (
        "lost",
        "PENDING",
    )


def test_a_refusal_after_the_block_leaves_the_card_as_it_was(client, editor, seed, services):
    # given an active card usable from 2031 on
    card_id = seed({CodeType.PHYSICAL: "ATOMPHYS0001"}, balance=500)
    assert "errors" not in _edit(client, editor, card_id, usableFrom="2031-01-01T00:00:00Z")
    before, events = _card(client, editor, card_id), _events(services, card_id)
    # when one edit blocks it, replaces its code, and gives an end before its start
    body = _edit(
        client,
        editor,
        card_id,
        enabled=False,
        physicalCode="ATOMPHYS0002",
        note="n",
        expiresAt="2030-01-01T00:00:00Z",
    )
    # then it is refused and nothing of it is written: neither the block nor the code
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "expiresAt"
    assert _card(client, editor, card_id) == before
    assert before["state"] == "ACTIVE" and before["note"] is None
    assert _events(services, card_id) == events == [("DETAILS_CHANGED", "usable_from", "editor")]
    codes = _rows(
        services, "SELECT code_type, revoked_at FROM giftcard_codes WHERE giftcard_id = :id", card_id
    )
    assert codes == [("PHYSICAL", None)]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_deactivated_card_stays_a_conflict(client, editor, seed, services, enabled):
    card_id = seed({CodeType.PHYSICAL: "DEADPHYS0001"})
    _set_state(services, card_id, "DEACTIVATED")
    body = _edit(client, editor, card_id, enabled=enabled)
    assert error_codes(body) == ["CONFLICT"] and body["errors"][0]["extensions"]["field"] == "id"
    assert _card(client, editor, card_id)["state"] == "DEACTIVATED" and _events(services, card_id) == []


# --- updatedBy ----------------------------------------------------------------------------------

ADD = """mutation A($giftcard: GiftCardAddInput!) { giftcardAdd(giftcard: $giftcard) { id updatedBy } }"""
STATE = "mutation S($id: ID!) {{ {op}(id: $id) {{ updatedBy }} }}"
TOPUP = """mutation { giftcardTransAdd(trans: {codeType: PHYSICAL, code: "WHOPHYS00001",
  transType: ADD, amount: "5.00"}) { balance } }"""


def test_updated_by_names_the_author_of_each_kind_of_change(client, mint, pos, office):
    creator = mint(permissions=["CreateGiftCard", "ListGiftCards"], sub="creator")
    added = gql(client, ADD, {"giftcard": {"physicalCode": "WHOPHYS00001"}}, token=creator)
    card_id = added["data"]["giftcardAdd"]["id"]
    assert added["data"]["giftcardAdd"]["updatedBy"] == "creator"
    # a transaction moves the balance, not updatedBy (its author is in the ledger)
    assert gql(client, TOPUP, token=pos)["data"]["giftcardTransAdd"]["balance"] == "5.00"
    assert _card(client, office, card_id)["updatedBy"] == "creator"
    edits: list[tuple[str, dict[str, object]]] = [
        ("coder", {"externalCode": "WHOEXTN00001"}),
        ("linker", {"memberId": "M1"}),
        ("unlinker", {"unlinkMember": True}),
        ("writer", {"refNo": "R1"}),
        ("clearer", {"refNo": None}),
        ("disabler", {"enabled": False}),
    ]
    for subject, giftcard in edits:
        body = _edit(client, mint(permissions=[*EDITOR, "BlockGiftCard"], sub=subject), card_id, **giftcard)
        assert body["data"]["giftcardEdit"]["updatedBy"] == subject, body
        assert _card(client, office, card_id)["updatedBy"] == subject
    for subject, op in [
        ("unblocker", "giftcardUnblock"),
        ("blocker", "giftcardBlock"),
        ("closer", "giftcardDeactivate"),
    ]:
        token = mint(roles=["admin"], sub=subject)
        body = gql(client, STATE.format(op=op), {"id": card_id}, token=token)
        assert body["data"][op]["updatedBy"] == subject, body
        assert _card(client, office, card_id)["updatedBy"] == subject
    # a repeat changes nothing: the last author stays
    gql(
        client,
        STATE.format(op="giftcardDeactivate"),
        {"id": card_id},
        token=mint(roles=["admin"], sub="again"),
    )
    assert _card(client, office, card_id)["updatedBy"] == "closer"


def test_updated_by_is_read_with_list_gift_cards_only(client, mint, seed):
    card_id = seed({CodeType.PHYSICAL: "READPHYS0001"})
    editor = mint(permissions=[*EDITOR, "BlockGiftCard"], sub="editor")
    assert _edit(client, editor, card_id, note="x")["data"]["giftcardEdit"]["updatedBy"] == "editor"
    finder = mint(permissions=["FindGiftCardByCode", "UsePhysicalGiftCardCodes"])
    body = gql(
        client,
        """query { giftcard(code: "READPHYS0001") { results { id state updatedBy } } }""",
        token=finder,
    )
    assert body["data"]["giftcard"]["results"] == [
        {"id": str(card_id), "state": "PENDING", "updatedBy": None}
    ]
    assert [(e["extensions"]["code"], e["path"][-1]) for e in body["errors"]] == [("FORBIDDEN", "updatedBy")]
    assert body["errors"][0]["message"] == "the token lacks the ListGiftCards permission"
