"""Partial results: a refused field never hides what the rest of the document did or may see.

Root fields are nullable, so a committed mutation's answer comes back beside the errors of the
others; a field of an answer the token may not read is null with its own error.
"""

from __future__ import annotations

import pytest

from app.enums import CodeType
from tests.conftest import fund, gql

CODE = "SPLITPAY0001"

SPLIT_PAYMENT = """
mutation Split($first: GiftCardTransInput!, $second: GiftCardTransInput!) {
  first: giftcardTransAdd(trans: $first) { id transType status amount balance }
  second: giftcardTransAdd(trans: $second) { id transType status amount balance }
}
"""

BALANCE = """query Balance($code: String!) {
  giftcard(code: $code, codeType: PHYSICAL) { results { balance } } }"""

ADD_PERSONAL = """
mutation Add($giftcard: GiftCardAddInput!) {
  giftcardAdd(giftcard: $giftcard) { id memberId codes { codeType code isMasked } %s }
}
"""

LOOKUP_AND_LIST = """
query Both($code: String!) {
  allowed: giftcard(code: $code, codeType: PHYSICAL) { results { id balance } }
  refused: giftcards { edges { cursor } }
}
"""


@pytest.fixture
def till(mint):
    return mint(
        permissions=["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse"], sub="till"
    )


@pytest.fixture
def ten_dollars(seed, services):
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    return card_id


def _use(amount: str) -> dict[str, str]:
    return {"codeType": "PHYSICAL", "code": CODE, "transType": "USE", "amount": amount}


def _errors_by_path(body) -> dict[tuple[str | int, ...], str]:
    return {tuple(error["path"]): error["extensions"]["code"] for error in body.get("errors", [])}


def test_split_payment_returns_the_committed_debit_beside_the_refused_one(client, till, ten_dollars):
    # given a card holding 10.00
    # when one document debits 4.00, then 50.00
    body = gql(client, SPLIT_PAYMENT, {"first": _use("-4.00"), "second": _use("-50.00")}, token=till)

    # then the first debit is answered, the second is refused on its own
    first = body["data"]["first"]
    assert (first["transType"], first["status"], first["amount"], first["balance"]) == (
        "USE",
        "COMPLETED",
        "-4.00",
        "6.00",
    )
    assert first["id"].isdigit()
    assert body["data"]["second"] is None
    assert _errors_by_path(body) == {("second",): "INSUFFICIENT_FUNDS"}
    # and the card holds what the answer says
    looked_up = gql(client, BALANCE, {"code": CODE}, token=till)
    assert looked_up["data"]["giftcard"]["results"] == [{"balance": "6.00"}]


@pytest.mark.parametrize(
    "field",
    ["transactions { id }", "openAuthorizations { id }", "note", "createdBy"],
)
def test_generated_personal_code_survives_a_field_the_token_may_not_read(client, mint, field):
    # given a token that may create cards but neither list cards nor read their transactions
    token = mint(permissions=["CreateGiftCard"])
    # when it creates a card with a generated PERSONAL code and asks for a field it may not read
    body = gql(
        client,
        ADD_PERSONAL % field,
        {"giftcard": {"addPersonalCode": True, "memberId": "C000000212"}},
        token=token,
    )

    # then the card and its code, shown in full this once, are in the answer
    card = body["data"]["giftcardAdd"]
    assert card["id"].isdigit() and card["memberId"] == "C000000212"
    (code,) = card["codes"]
    assert (code["codeType"], code["isMasked"]) == ("PERSONAL", False)
    assert "*" not in code["code"]
    # and only the refused field is null, with its own error
    name = field.split()[0]
    assert card[name] is None
    assert _errors_by_path(body) == {("giftcardAdd", name): "FORBIDDEN"}


def test_a_query_returns_the_root_field_it_may_read_beside_the_refused_one(client, till, ten_dollars):
    # given a till that may look cards up by code but not list them
    # when one document does both
    body = gql(client, LOOKUP_AND_LIST, {"code": CODE}, token=till)

    # then the lookup is answered and only the listing is refused
    assert body["data"] == {
        "allowed": {"results": [{"id": str(ten_dollars), "balance": "10.00"}]},
        "refused": None,
    }
    assert _errors_by_path(body) == {("refused",): "FORBIDDEN"}
