"""giftcardAdd: creating cards with PHYSICAL, EXTERNAL and generated PERSONAL codes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.domain.codes import ALPHABET, PERSONAL_CODE_LENGTH
from tests.conftest import error_codes, gql

ADD = """
mutation Add($giftcard: GiftCardAddInput!) {
  giftcardAdd(giftcard: $giftcard) {
    id memberId balance currency state
    codes { id codeType code expiresOn isMasked }
  }
}
"""

LOOKUP = """
query Lookup($code: String!, $codeType: CodeType) {
  giftcard(code: $code, codeType: $codeType) {
    limitedByPermission
    results { id memberId balance codes { codeType code isMasked } }
  }
}
"""


def test_design_example_works_unchanged(client, mint):
    # given a back-office token
    token = mint(permissions=["CreateGiftCard"])
    # when the DESIGN §6 example runs verbatim
    body = gql(
        client,
        'mutation { giftcardAdd(giftcard: {physicalCode: "GC49288330", '
        'physicalPin: "1234"}) { id codes { codeType code expiresOn } } }',
        token=token,
    )
    # then the card comes back with its physical code
    card = body["data"]["giftcardAdd"]
    assert card["id"].isdigit()
    assert card["codes"] == [{"codeType": "PHYSICAL", "code": "GC49288330", "expiresOn": None}]


def test_new_card_starts_pending_with_zero_balance_in_default_currency(client, mint):
    body = gql(
        client,
        ADD,
        {"giftcard": {"externalCode": "ext-0001-aaaa"}},
        token=mint(permissions=["CreateGiftCard"]),
    )
    card = body["data"]["giftcardAdd"]
    assert (card["balance"], card["currency"], card["state"]) == ("0.00", "USD", "PENDING")
    assert card["codes"][0]["code"] == "EXT0001AAAA"  # normalised: upper case, no dashes


def test_personal_code_is_generated_shown_once_then_masked(client, mint):
    # given a card created with a generated PERSONAL code
    body = gql(
        client,
        ADD,
        {"giftcard": {"addPersonalCode": True, "memberId": "C000000212"}},
        token=mint(permissions=["CreateGiftCard"]),
    )
    (code,) = body["data"]["giftcardAdd"]["codes"]
    assert code["codeType"] == "PERSONAL" and code["isMasked"] is False
    assert len(code["code"]) == PERSONAL_CODE_LENGTH
    assert set(code["code"]) <= set(ALPHABET)
    # when a storefront looks it up by that code
    found = gql(client, LOOKUP, {"code": code["code"]}, token=mint(roles=["storefront"]))
    # then it is found, but the code is masked to its last four characters
    (card,) = found["data"]["giftcard"]["results"]
    assert card["memberId"] == "C000000212"
    assert card["codes"] == [
        {
            "codeType": "PERSONAL",
            "isMasked": True,
            "code": "*" * (PERSONAL_CODE_LENGTH - 4) + code["code"][-4:],
        }
    ]
    assert found["data"]["giftcard"]["limitedByPermission"] is True


def test_generated_personal_codes_differ(client, mint):
    token = mint(permissions=["CreateGiftCard"])
    codes = {
        gql(client, ADD, {"giftcard": {"addPersonalCode": True, "memberId": "M1"}}, token=token)["data"][
            "giftcardAdd"
        ]["codes"][0]["code"]
        for _ in range(5)
    }
    assert len(codes) == 5


def test_expiry_is_kept_per_code(client, mint):
    later = (date.today() + timedelta(days=30)).isoformat()
    body = gql(
        client,
        ADD,
        {
            "giftcard": {
                "physicalCode": "PHYS00001",
                "externalCode": "EXTN00001",
                "externalCodeExpiresOn": later,
            }
        },
        token=mint(permissions=["CreateGiftCard"]),
    )
    expiries = {c["codeType"]: c["expiresOn"] for c in body["data"]["giftcardAdd"]["codes"]}
    assert expiries == {"PHYSICAL": None, "EXTERNAL": later}


def test_duplicate_code_within_a_type_is_a_conflict_and_writes_nothing(client, mint):
    token = mint(permissions=["CreateGiftCard", "ListGiftCards"])
    gql(client, ADD, {"giftcard": {"physicalCode": "DUP-0001"}}, token=token)
    # when the same code (spelled differently) is added again, with a new external code
    body = gql(
        client, ADD, {"giftcard": {"physicalCode": "dup 0001", "externalCode": "NEW00001"}}, token=token
    )
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["field"] == "physicalCode"
    # then the external code of the refused card was not written either
    found = gql(
        client,
        LOOKUP,
        {"code": "NEW00001"},
        token=mint(permissions=["FindGiftCardByCode", "UseExternalGiftCardCodes"]),
    )
    assert found["data"]["giftcard"]["results"] == []


def test_same_code_under_two_types_is_allowed(client, mint):
    body = gql(
        client,
        ADD,
        {"giftcard": {"physicalCode": "SAME0001", "externalCode": "SAME0001"}},
        token=mint(permissions=["CreateGiftCard"]),
    )
    assert len(body["data"]["giftcardAdd"]["codes"]) == 2


@pytest.mark.parametrize(
    ("giftcard", "field"),
    [
        ({"physicalCode": "ab!"}, "physicalCode"),
        ({"physicalCode": "A" * 65}, "physicalCode"),
        ({"physicalCode": "ABC"}, "physicalCode"),
        ({"externalCode": "  --  "}, "externalCode"),
        ({"physicalCode": "GOOD0001", "physicalPin": "12a4"}, "physicalPin"),
        ({"physicalCode": "GOOD0001", "physicalPin": "123"}, "physicalPin"),
        ({"physicalPin": "1234", "externalCode": "GOOD0002"}, "physicalPin"),
        ({"addPersonalCode": True}, "memberId"),
        ({"addPersonalCode": True, "memberId": "bad member"}, "memberId"),
        ({"physicalCode": "GOOD0001", "physicalCodeExpiresOn": "2000-01-01"}, "physicalCodeExpiresOn"),
        ({"externalCodeExpiresOn": "2999-01-01", "physicalCode": "GOOD0001"}, "externalCodeExpiresOn"),
        ({"physicalCode": "GOOD0001", "currency": "XXX"}, "currency"),
        ({}, "giftcard"),
        ({"physicalCode": "GOOD0001", "physicalPin": ""}, "physicalPin"),
        ({"physicalCode": "GOOD0001", "physicalPin": "1234\n"}, "physicalPin"),
        ({"physicalCode": "GOOD0001\n"}, "physicalCode"),
        ({"physicalCode": "GOOD0001", "currency": ""}, "currency"),
        ({"addPersonalCode": True, "memberId": "C1\n"}, "memberId"),
        ({"addPersonalCode": True, "memberId": ""}, "memberId"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client, mint, giftcard, field):
    body = gql(client, ADD, {"giftcard": giftcard}, token=mint(permissions=["CreateGiftCard"]))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert field in body["errors"][0]["message"]


def test_needs_create_permission(client, mint):
    body = gql(client, ADD, {"giftcard": {"physicalCode": "GOOD0001"}}, token=mint(roles=["storefront"]))
    assert error_codes(body) == ["FORBIDDEN"]
    assert gql(client, ADD, {"giftcard": {"physicalCode": "GOOD0001"}})["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED"
    }
