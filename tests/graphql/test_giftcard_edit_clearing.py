"""giftcardEdit's operator fields: set when given, kept when left out, cleared by an explicit null;
an idempotency key tells null from left out; a program card's expiry stays within the legal minimum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import error_codes, gql

FIELDS = "memberId state usableFrom expiresAt note sourceId refNo codes { codeType }"
EDIT = f"""mutation E($giftcard: GiftCardEditInput!, $key: String) {{
  giftcardEdit(giftcard: $giftcard, idempotencyKey: $key) {{ {FIELDS} }} }}"""
CARD = f"""query C($id: ID!) {{ giftcard(id: $id) {{ results {{ {FIELDS} }} }} }}"""
ADD = """mutation A($giftcard: GiftCardAddInput!) { giftcardAdd(giftcard: $giftcard) { id expiresAt } }"""
GIVEN = {
    "usableFrom": "2030-01-01T00:00:00+00:00",
    "expiresAt": "2040-01-01T00:00:00+00:00",
    "note": "kept aside",
    "sourceId": "S-1",
    "refNo": "R-1",
}


def _edit(client, token, card_id, key=None, **giftcard):
    return gql(client, EDIT, {"giftcard": {"id": str(card_id), **giftcard}, "key": key}, token=token)


def _card(client, token, card_id):
    (card,) = gql(client, CARD, {"id": str(card_id)}, token=token)["data"]["giftcard"]["results"]
    return card


def _details_events(services, card_id):
    with services.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT detail FROM giftcard_events WHERE giftcard_id = :id AND event = 'DETAILS_CHANGED' "
                "ORDER BY id"
            ),
            {"id": card_id},
        ).all()
    return [row[0] for row in rows]


def test_each_operator_field_is_set_kept_and_cleared(client, office, seed, services):
    card_id = seed({CodeType.PHYSICAL: "CLEARPHYS001"}, member_id="M1")
    other = seed({CodeType.PHYSICAL: "CLEARPHYS002"})
    # set when given
    answer = _edit(client, office, card_id, **GIVEN)["data"]["giftcardEdit"]
    assert {name: answer[name] for name in GIVEN} == GIVEN and answer == _card(client, office, card_id)
    assert _edit(client, office, other, **GIVEN)["data"]["giftcardEdit"]["note"] == "kept aside"
    expected = _card(client, office, card_id)
    for name in GIVEN:
        # kept when left out (another field changes)
        assert _edit(client, office, card_id, enabled=False)["data"]["giftcardEdit"] == expected | {
            "state": "BLOCKED"
        }
        # cleared by null, and only that field
        body = _edit(client, office, card_id, enabled=True, **{name: None})
        expected = expected | {name: None}
        assert body["data"]["giftcardEdit"] == expected, name
        assert _card(client, office, card_id) == expected
    assert expected == answer | dict.fromkeys(GIVEN)  # the member and codes stay
    assert _details_events(services, card_id) == [
        "expires_at,note,ref_no,source_id,usable_from",
        "usable_from",
        "expires_at",
        "note",
        "source_id",
        "ref_no",
    ]
    # the other card kept its fields
    assert {name: _card(client, office, other)[name] for name in GIVEN} == GIVEN


def test_null_in_other_fields_still_means_left_out(client, office, seed, services):
    card_id = seed({CodeType.PHYSICAL: "NULLPHYS0001"}, member_id="M1")
    _edit(client, office, card_id, note="n", refNo="R")
    before = _card(client, office, card_id)
    nulls = {
        "memberId": None,
        "physicalCode": None,
        "externalCode": None,
        "enabled": None,
        "physicalPin": None,
    }
    body = _edit(client, office, card_id, **nulls, refNo=None)
    assert body["data"]["giftcardEdit"] == before | {"refNo": None}
    # with nothing to clear, nulls alone are nothing to change
    body = _edit(client, office, card_id, **nulls)
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "giftcard"
    assert _details_events(services, card_id) == ["note,ref_no", "ref_no"]


def test_an_idempotency_key_tells_null_from_left_out(client, office, seed, services):
    card_id = seed({CodeType.PHYSICAL: "KEYPHYS00001"})
    first = _edit(client, office, card_id, key="k-1", refNo="R", note="n")
    assert first["data"]["giftcardEdit"]["note"] == "n"
    # the same request replays; the same with note: null is another request
    assert _edit(client, office, card_id, key="k-1", refNo="R", note="n") == first
    # left out first, null in the retry: another request
    assert _edit(client, office, card_id, key="k-2", refNo="R")["data"]["giftcardEdit"]["note"] == "n"
    clearing = _edit(client, office, card_id, key="k-2", refNo="R", note=None)
    assert error_codes(clearing) == ["CONFLICT"]
    assert clearing["errors"][0]["extensions"]["field"] == "idempotencyKey"
    # null first: the same replays, left out in the retry is another request
    cleared = _edit(client, office, card_id, key="k-3", refNo="R3", note=None)
    assert cleared["data"]["giftcardEdit"]["note"] is None
    assert _edit(client, office, card_id, key="k-3", refNo="R3", note=None) == cleared
    assert error_codes(_edit(client, office, card_id, key="k-3", refNo="R3")) == ["CONFLICT"]
    assert _card(client, office, card_id)["refNo"] == "R3"
    assert _details_events(services, card_id) == ["note,ref_no", "ref_no", "note,ref_no"]


def _days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_a_program_cards_expiry_is_held_to_the_legal_minimum(client, office, program, services):
    lasting = program(code="LAST", expiry={"kind": "AFTER_ISSUE", "days": 1825})
    added = gql(
        client, ADD, {"giftcard": {"programId": lasting, "physicalCode": "PROGPHYS0001"}}, token=office
    )
    card_id, issued = added["data"]["giftcardAdd"]["id"], added["data"]["giftcardAdd"]["expiresAt"]
    # sooner than GIFTCARDS_MIN_EXPIRY_DAYS (1825): refused, nothing written
    body = _edit(client, office, card_id, expiresAt=_days(1000), note="x")
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "expiresAt"
    assert "GIFTCARDS_MIN_EXPIRY_DAYS" in body["errors"][0]["message"]
    assert (_card(client, office, card_id)["expiresAt"], _card(client, office, card_id)["note"]) == (
        issued,
        None,
    )
    # later: allowed; cleared: the operator's decision
    later = _edit(client, office, card_id, expiresAt=_days(1830))["data"]["giftcardEdit"]["expiresAt"]
    assert datetime.fromisoformat(later) - datetime.now(UTC) > timedelta(days=1829)
    assert _edit(client, office, card_id, expiresAt=None)["data"]["giftcardEdit"]["expiresAt"] is None
    assert _details_events(services, int(card_id)) == ["expires_at", "expires_at"]


def test_a_card_without_a_program_may_expire_sooner(client, office, seed):
    card_id = seed({CodeType.PHYSICAL: "FREEPHYS0001"})
    soon = _edit(client, office, card_id, expiresAt=_days(30))["data"]["giftcardEdit"]["expiresAt"]
    assert timedelta(days=29) < datetime.fromisoformat(soon) - datetime.now(UTC) <= timedelta(days=30)
