"""giftcardEdit: add, replace and revoke codes; link and unlink members; operator fields."""

from __future__ import annotations

import pytest

from app.enums import CodeType
from tests.conftest import error_codes, gql

EDIT = """
mutation Edit($giftcard: GiftCardEditInput!) {
  giftcardEdit(giftcard: $giftcard) {
    id memberId state usableFrom expiresAt sourceId refNo note
    codes { id codeType code isMasked expiresOn }
  }
}
"""
BY_CODE = """query($code: String!) { giftcard(code: $code) { results { id codes { codeType code } } } }"""
BY_ID = """query($id: ID!) { giftcard(id: $id) { results { memberId codes { codeType code isMasked } } } }"""


@pytest.fixture
def editor(mint):
    return mint(
        permissions=[
            "EditGiftCard",
            "ListGiftCards",
            "FindGiftCardByCode",
            "UsePhysicalGiftCardCodes",
            "UseExternalGiftCardCodes",
            "UseCryptoGiftCardCodes",
        ]
    )


def _edit(client, token, **giftcard):
    return gql(client, EDIT, {"giftcard": giftcard}, token=token)


def _found(client, token, code):
    return gql(client, BY_CODE, {"code": code}, token=token)["data"]["giftcard"]["results"]


def test_design_example_revokes_physical_adds_personal_and_links_member(client, editor, seed):
    # given a card with a physical code and no member
    card_id = seed({CodeType.PHYSICAL: "OLDPHYS00001"})
    # when the DESIGN §6 edit runs
    body = gql(
        client,
        f'mutation {{ giftcardEdit(giftcard: {{id: "{card_id}", revokePhysicalCode: true, '
        'addPersonalCode: true, memberId: "C000000212"}) { id memberId codes { codeType code } } }',
        token=editor,
    )
    # then the member is linked, the physical code is gone and a new personal code is shown in full
    card = body["data"]["giftcardEdit"]
    assert card["memberId"] == "C000000212"
    (personal,) = card["codes"]
    assert personal["codeType"] == "PERSONAL" and "*" not in personal["code"]
    assert _found(client, editor, "OLDPHYS00001") == []
    assert _found(client, editor, personal["code"])[0]["id"] == str(card_id)


def test_adding_a_code_of_a_type_the_card_has_replaces_it(client, editor, seed):
    card_id = seed({CodeType.PHYSICAL: "FIRSTPHYS001", CodeType.EXTERNAL: "KEEPEXTN0001"})
    body = _edit(client, editor, id=str(card_id), physicalCode="SECONDPHYS01", physicalPin="5555")
    codes = {c["codeType"]: c["code"] for c in body["data"]["giftcardEdit"]["codes"]}
    assert codes == {"PHYSICAL": "SECONDPHYS01", "EXTERNAL": "KEEPEXTN0001"}
    assert _found(client, editor, "FIRSTPHYS001") == []
    assert _found(client, editor, "SECONDPHYS01")[0]["id"] == str(card_id)


def test_a_revoked_code_cannot_be_reused_on_another_card(client, editor, seed, mint):
    card_id = seed({CodeType.PHYSICAL: "REUSEME00001"})
    _edit(client, editor, id=str(card_id), revokePhysicalCode=True)
    other = seed({CodeType.EXTERNAL: "OTHEREXT0001"})
    body = _edit(client, editor, id=str(other), physicalCode="REUSEME00001")
    assert error_codes(body) == ["CONFLICT"]
    creator = mint(permissions=["CreateGiftCard"])
    body = gql(
        client, 'mutation { giftcardAdd(giftcard: {physicalCode: "REUSEME00001"}) { id } }', token=creator
    )
    assert error_codes(body) == ["CONFLICT"]


def test_every_type_can_be_added_and_revoked_in_one_call(client, editor, seed):
    card_id = seed({CodeType.PHYSICAL: "ALLPHYS00001"}, member_id="M1")
    body = _edit(
        client,
        editor,
        id=str(card_id),
        revokePhysicalCode=True,
        externalCode="ALLEXTN00001",
        addPersonalCode=True,
        memberId="M1",
    )
    codes = body["data"]["giftcardEdit"]["codes"]
    assert sorted(c["codeType"] for c in codes) == ["EXTERNAL", "PERSONAL"]
    body = _edit(client, editor, id=str(card_id), revokeExternalCode=True, revokePersonalCode=True)
    assert body["data"]["giftcardEdit"]["codes"] == []


def test_existing_codes_are_masked_in_the_response_new_ones_shown(client, editor, seed):
    card_id = seed({CodeType.PERSONAL: "ABCDEFGHJKLMNPQRSTUV"}, member_id="M1")
    body = _edit(client, editor, id=str(card_id), externalCode="NEWEXTN00001")
    shown = {c["codeType"]: (c["code"], c["isMasked"]) for c in body["data"]["giftcardEdit"]["codes"]}
    assert shown == {"PERSONAL": ("****************STUV", True), "EXTERNAL": ("NEWEXTN00001", False)}


# --- members -----------------------------------------------------------------------------------


def test_personal_code_needs_the_cards_member(client, editor, seed):
    card_id = seed({CodeType.PHYSICAL: "MEMBPHYS0001"}, member_id="OWNER1")
    body = _edit(client, editor, id=str(card_id), addPersonalCode=True)
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "memberId"
    body = _edit(client, editor, id=str(card_id), addPersonalCode=True, memberId="SOMEONE2")
    assert error_codes(body) == ["BAD_USER_INPUT"] and "another member" in body["errors"][0]["message"]
    body = _edit(client, editor, id=str(card_id), addPersonalCode=True, memberId="OWNER1")
    assert body["data"]["giftcardEdit"]["memberId"] == "OWNER1"


def test_unlinking_the_member_revokes_personal_codes(client, editor, seed, mint):
    card_id = seed(
        {CodeType.PHYSICAL: "UNLPHYS00001", CodeType.PERSONAL: "UNLINKPERSONAL000001"}, member_id="LEAVER1"
    )
    body = _edit(client, editor, id=str(card_id), unlinkMember=True)
    card = body["data"]["giftcardEdit"]
    assert card["memberId"] is None
    assert [c["codeType"] for c in card["codes"]] == ["PHYSICAL"]
    assert _found(client, editor, "UNLINKPERSONAL000001") == []
    lister = mint(permissions=["ListGiftCards"])
    assert (
        gql(
            client,
            BY_ID.replace("$id: ID!", "$m: String!").replace("id: $id", "memberId: $m"),
            {"m": "LEAVER1"},
            token=lister,
        )["data"]["giftcard"]["results"]
        == []
    )
    # a member can be linked again afterwards
    body = _edit(client, editor, id=str(card_id), memberId="NEWOWNER1")
    assert body["data"]["giftcardEdit"]["memberId"] == "NEWOWNER1"


def test_member_lookup_returns_all_cards_of_the_member(client, editor, seed, mint):
    first = seed({CodeType.PHYSICAL: "MANY00000001"})
    second = seed({CodeType.PHYSICAL: "MANY00000002"})
    for card_id in (first, second):
        _edit(client, editor, id=str(card_id), memberId="COLLECTOR")
    body = gql(
        client,
        'query { giftcard(memberId: "COLLECTOR") { results { id } } }',
        token=mint(permissions=["ListGiftCards"]),
    )
    assert [c["id"] for c in body["data"]["giftcard"]["results"]] == [str(first), str(second)]


# --- operator fields and refusals ------------------------------------------------------------


def test_operator_fields_are_set_and_kept(client, editor, seed):
    card_id = seed({CodeType.PHYSICAL: "OPSPHYS00001"})
    body = _edit(
        client,
        editor,
        id=str(card_id),
        usableFrom="2026-01-01T00:00:00Z",
        expiresAt="2030-01-01T00:00:00+00:00",
        sourceId="ERP",
        refNo="R-1",
        note="vip",
    )
    card = body["data"]["giftcardEdit"]
    assert (card["sourceId"], card["refNo"], card["note"]) == ("ERP", "R-1", "vip")
    assert card["usableFrom"].startswith("2026-01-01T00:00:00") and card["expiresAt"].startswith("2030-01-01")
    body = _edit(client, editor, id=str(card_id), note="still vip")
    assert body["data"]["giftcardEdit"]["refNo"] == "R-1"


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({}, "BAD_USER_INPUT", "giftcard"),
        ({"revokeExternalCode": True}, "BAD_USER_INPUT", "revokeExternalCode"),
        ({"unlinkMember": True}, "BAD_USER_INPUT", "unlinkMember"),
        ({"unlinkMember": True, "memberId": "X1"}, "BAD_USER_INPUT", "unlinkMember"),
        ({"physicalCode": "bad!"}, "BAD_USER_INPUT", "physicalCode"),
        ({"physicalPin": "1234"}, "BAD_USER_INPUT", "physicalPin"),
        (
            {"expiresAt": "2020-01-01T00:00:00Z", "usableFrom": "2021-01-01T00:00:00Z"},
            "BAD_USER_INPUT",
            "expiresAt",
        ),
        ({"usableFrom": "2021-01-01T00:00:00"}, "BAD_USER_INPUT", "usableFrom"),
        ({"note": "x" * 1001}, "BAD_USER_INPUT", "note"),
        ({"physicalCode": "TAKENEXT0001"}, None, None),  # a PHYSICAL code may equal an EXTERNAL one
    ],
)
def test_refusals_name_the_field_and_write_nothing(client, editor, seed, changes, code, field):
    card_id = seed({CodeType.PHYSICAL: "REFPHYS00001"})
    seed({CodeType.EXTERNAL: "TAKENEXT0001"})
    body = _edit(client, editor, id=str(card_id), **changes)
    if code is None:
        assert "errors" not in body
        return
    assert error_codes(body) == [code]
    assert body["errors"][0]["extensions"]["field"] == field
    assert _found(client, editor, "REFPHYS00001")[0]["id"] == str(card_id)  # still there


def test_unknown_card_is_not_found(client, editor):
    body = _edit(client, editor, id="999999", note="x")
    assert error_codes(body) == ["NOT_FOUND"] and body["errors"][0]["extensions"]["field"] == "id"


def test_replacing_a_code_with_a_taken_one_changes_nothing(client, editor, seed):
    card_id = seed({CodeType.PHYSICAL: "MINEPHYS0001"})
    seed({CodeType.PHYSICAL: "THEIRPHYS001"})
    body = _edit(client, editor, id=str(card_id), physicalCode="THEIRPHYS001", note="changed")
    assert error_codes(body) == ["CONFLICT"]
    assert _found(client, editor, "MINEPHYS0001")[0]["id"] == str(card_id)  # old code not revoked


def test_needs_edit_permission(client, mint, seed):
    card_id = seed({CodeType.PHYSICAL: "PERMPHYS0001"})
    body = _edit(client, mint(roles=["storefront"]), id=str(card_id), note="x")
    assert error_codes(body) == ["FORBIDDEN"]
    assert error_codes(_edit(client, None, id=str(card_id), note="x")) == ["UNAUTHENTICATED"]


def test_times_with_an_offset_are_kept_as_the_same_instant(client, editor, seed):
    card_id = seed({CodeType.PHYSICAL: "OFFSETPHYS01"})
    body = _edit(client, editor, id=str(card_id), usableFrom="2027-01-01T00:00:00+02:00")
    assert body["data"]["giftcardEdit"]["usableFrom"].startswith("2026-12-31T22:00:00")
    # an expiry one hour later in another zone is accepted (it is later)
    body = _edit(client, editor, id=str(card_id), expiresAt="2027-01-01T01:00:00+02:00")
    assert body["data"]["giftcardEdit"]["expiresAt"].startswith("2026-12-31T23:00:00")


@pytest.mark.parametrize("field", ["note", "sourceId", "refNo"])
def test_control_characters_are_refused(client, editor, seed, field):
    card_id = seed({CodeType.PHYSICAL: "CTRLPHYS0001"})
    body = _edit(client, editor, id=str(card_id), **{field: "bad\x00value"})
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == field


def test_a_note_may_span_lines(client, editor, seed):
    card_id = seed({CodeType.PHYSICAL: "LINESPHYS001"})
    assert _edit(client, editor, id=str(card_id), note="line 1\nline 2")["data"]["giftcardEdit"]["note"] == (
        "line 1\nline 2"
    )


@pytest.mark.parametrize("card_id", ["9223372036854775808", "99999999999999999999", "0"])
def test_ids_outside_the_id_range_are_refused(client, editor, card_id):
    body = _edit(client, editor, id=card_id, note="x")
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "id"


def test_giving_the_cards_own_code_again_changes_its_pin_and_expiry(client, editor, seed, services):
    # given a card with a PIN-less physical code
    card_id = seed({CodeType.PHYSICAL: "SAMEPHYS0001"})
    before = _edit(client, editor, id=str(card_id), note="before")["data"]["giftcardEdit"]["codes"]
    # when the same code is given again with a PIN and an expiry
    body = _edit(
        client,
        editor,
        id=str(card_id),
        physicalCode="same-phys-0001",
        physicalPin="4321",
        physicalCodeExpiresOn="2099-01-01",
    )
    # then it is the same code row, now with the PIN and the expiry
    (code,) = body["data"]["giftcardEdit"]["codes"]
    assert code["id"] == before[0]["id"] and code["expiresOn"] == "2099-01-01"
    from sqlalchemy import text

    from app.domain.pins import StoredPin

    with services.engine.connect() as connection:
        value, key_ids = connection.execute(
            text("SELECT pin_hash, pin_key_ids FROM giftcard_codes WHERE id = :id"), {"id": int(code["id"])}
        ).one()
    assert services.pins.verify(int(code["id"]), "4321", StoredPin(value, key_ids)).ok
