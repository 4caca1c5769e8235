"""Tokens the GraphQL tests share: the back office, and a till with the pos role's permissions
but not the role (so the attempt budget is the test settings', not the role's)."""

from __future__ import annotations

import pytest

POS = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse", "GiftCardTransAdd"]


@pytest.fixture
def admin(mint):
    return mint(roles=["admin"], sub="office")


@pytest.fixture
def pos(mint):
    return mint(permissions=POS, sub="till")
