"""Tokens the GraphQL tests share: the back office, and a till with the pos role's permissions
but not the role (so the attempt budget is the test settings', not the role's)."""

from __future__ import annotations

import pytest

from tests.conftest import gql

PROGRAM_ADD = (
    """mutation P($program: GiftCardProgramInput!) { giftcardProgramAdd(program: $program) { id } }"""
)
PROGRAM_FORMAT = {"prefix": "GC", "length": 16, "checkCharacter": True}
POS = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse", "GiftCardTransAdd"]


@pytest.fixture
def admin(mint):
    return mint(roles=["admin"], sub="office")


@pytest.fixture
def pos(mint):
    return mint(permissions=POS, sub="till")


@pytest.fixture
def office(mint):
    return mint(roles=["admin"], sub="office")


@pytest.fixture
def program(client, office):
    """``program(**settings)`` adds a program of the default store; its id."""

    def _add(**settings) -> str:
        given = {"code": "GC", "name": "Gift card", "currency": "USD", "codeFormat": PROGRAM_FORMAT}
        body = gql(client, PROGRAM_ADD, {"program": {**given, **settings}}, token=office)
        assert "errors" not in body, body
        return str(body["data"]["giftcardProgramAdd"]["id"])

    return _add
