"""A variable that does not fit its type gets a message naming the path and what was expected,
and never the value that was sent (which could be a gift card code)."""

from __future__ import annotations

from typing import Any

import pytest

TRANS = "mutation($t: GiftCardTransInput!) { giftcardTransAdd(trans: $t) { id } }"
SECRET = "GC49288330SECRET"


def variable_errors(client, mint, document: str, variables: dict[str, Any]) -> list[str]:
    token = mint(permissions=["GiftCardTransUse", "UsePhysicalGiftCardCodes", "FindGiftCardByCode"])
    response = client.post(
        "/graphql",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    body = response.json()
    assert "data" not in body or body["data"] is None
    assert {error["extensions"]["code"] for error in body["errors"]} == {"BAD_USER_INPUT"}
    assert SECRET not in response.text
    return [error["message"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("trans", "messages"),
    [
        ({"code": SECRET, "transType": "USE", "amount": 10}, ["trans.amount: expected String, got a number"]),
        (
            {"code": SECRET, "transType": "USE", "amount": -6.49},
            ["trans.amount: expected String, got a number"],
        ),
        (
            {"code": SECRET, "transType": "USE", "ammount": "1.00"},
            ["trans.amount is required", "trans: unknown field ammount"],
        ),
        ({"code": SECRET, "amount": "1.00"}, ["trans.transType is required"]),
        ({"code": SECRET, "transType": None, "amount": "1.00"}, ["trans.transType is required"]),
        (
            {"code": SECRET, "transType": SECRET, "amount": "1.00"},
            ["trans.transType: expected a TransType value"],
        ),
        ({"code": SECRET, "transType": 3, "amount": "1.00"}, ["trans.transType: expected a TransType value"]),
        (
            {"code": True, "transType": "USE", "amount": "1.00"},
            ["trans.code: expected String, got a boolean"],
        ),
        (
            {"code": {"x": SECRET}, "transType": "USE", "amount": "1.00"},
            ["trans.code: expected String, got an object"],
        ),
        (
            {"code": [SECRET], "transType": "USE", "amount": "1.00"},
            ["trans.code: expected String, got a list"],
        ),
        (SECRET, ["trans: expected GiftCardTransInput, got a string"]),
        ([SECRET], ["trans: expected GiftCardTransInput, got a list"]),
        (12, ["trans: expected GiftCardTransInput, got a number"]),
    ],
)
def test_a_wrong_value_names_the_path_and_the_expected_type(client, mint, trans, messages):
    assert variable_errors(client, mint, TRANS, {"t": trans}) == messages


@pytest.mark.parametrize("variables", [{}, {"t": None}])
def test_a_missing_required_variable_is_named(client, mint, variables):
    assert variable_errors(client, mint, TRANS, variables) == ["$t is required"]


def test_a_variable_inside_an_input_object_is_named_by_its_place(client, mint):
    document = """mutation($a: String!) {
      giftcardTransAdd(trans: {code: "X", transType: USE, amount: $a}) { id } }"""
    assert variable_errors(client, mint, document, {"a": 649}) == [
        "trans.amount: expected String, got a number"
    ]


def test_an_enum_argument(client, mint):
    document = 'query($c: CodeType) { giftcard(code: "X", codeType: $c) { limitedByPermission } }'
    assert variable_errors(client, mint, document, {"c": SECRET}) == ["codeType: expected a CodeType value"]


def test_an_unknown_field_that_is_not_a_name_is_not_repeated(client, mint):
    trans = {"code": "X", "transType": "USE", "amount": "1.00", f"{SECRET} or 1=1": 1}
    assert variable_errors(client, mint, TRANS, {"t": trans}) == ["trans: an unknown field"]


def test_a_scalar_that_refuses_a_value_does_not_repeat_it(client, mint):
    document = "mutation($d: Date) { giftcardAdd(giftcard: {physicalCodeExpiresOn: $d}) { id } }"
    assert variable_errors(client, mint, document, {"d": SECRET}) == [
        "giftcard.physicalCodeExpiresOn: expected Date, got a string"
    ]
