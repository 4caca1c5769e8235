"""Partial results: a refused field never hides what the rest of the document did or may see.

Root fields are nullable, so a committed mutation's answer comes back beside the errors of the
others; a field of an answer the token may not read is null with its own error.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

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

LOOKUP_BY_CODE_AND_BY_ID = """
query Mixed($code: String!, $id: ID!) {
  byCode: giftcard(code: $code, codeType: PHYSICAL) { results { id balance } }
  byId: giftcard(id: $id) { results { id balance } }
}
"""

SPEND_AND_LOAD = """
mutation SpendAndLoad($spend: GiftCardTransInput!, $load: GiftCardTransInput!) {
  spend: giftcardTransAdd(trans: $spend) { transType status amount balance }
  load: giftcardTransAdd(trans: $load) { transType status amount balance }
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
    ["transactions { id }", "openAuthorizations { id }", "note", "createdBy", "updatedBy"],
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


def test_an_aliased_lookup_by_code_stands_beside_a_refused_lookup_by_id(client, mint, ten_dollars):
    # given a storefront token: it may look a card up by code, but not by internal id (ListGiftCards)
    storefront = mint(roles=["storefront"], sub="shop")
    # when one document asks for the same card both ways, under two aliases
    response = client.post(
        "/graphql",
        json={"query": LOOKUP_BY_CODE_AND_BY_ID, "variables": {"code": CODE, "id": str(ten_dollars)}},
        headers={"Authorization": f"Bearer {storefront}"},
    )

    # then the lookup by code is answered, and only the alias of the refused field is null
    assert response.status_code == 200  # a field error: the document was executed
    body = response.json()
    assert body["data"] == {
        "byCode": {"results": [{"id": str(ten_dollars), "balance": "10.00"}]},
        "byId": None,
    }
    (error,) = body["errors"]
    assert error["path"] == ["byId"]
    assert error["extensions"]["code"] == "FORBIDDEN"


def test_a_committed_mutation_stands_beside_a_later_refused_one(client, till, ten_dollars, services):
    # given a till that may spend (GiftCardTransUse) but not load (GiftCardTransAdd) a card holding 10.00
    load = {**_use("5.00"), "transType": "ADD"}
    # when one document spends 4.00, then tries to load 5.00
    body = gql(client, SPEND_AND_LOAD, {"spend": _use("-4.00"), "load": load}, token=till)

    # then the spend is answered and the load alone is refused, under its alias
    assert body["data"] == {
        "spend": {"transType": "USE", "status": "COMPLETED", "amount": "-4.00", "balance": "6.00"},
        "load": None,
    }
    assert _errors_by_path(body) == {("load",): "FORBIDDEN"}
    # and the spend was committed: the card holds 6.00, with no ADD in its ledger
    with services.engine.connect() as connection:
        balance = connection.execute(
            text("SELECT balance FROM giftcards WHERE id = :id"), {"id": ten_dollars}
        ).scalar_one()
        kinds = connection.execute(
            text("SELECT trans_type FROM giftcard_transactions WHERE giftcard_id = :id ORDER BY id"),
            {"id": ten_dollars},
        ).scalars()
        assert (balance, list(kinds)) == (600, ["IMPORT", "USE"])
