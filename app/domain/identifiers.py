"""Identifiers callers pass in: gift card ids and member ids."""

from __future__ import annotations

import re

from app.errors import BadUserInputError

_MEMBER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_CARD_ID = re.compile(r"[0-9]{1,10}")
MAX_CARD_ID = 2**31 - 1  # the id column is a 32-bit integer on every database


def validate_member_id(member_id: str, field: str = "memberId") -> str:
    if not _MEMBER_ID.fullmatch(member_id):
        raise BadUserInputError(f"{field}: 1 to 64 letters, digits or . _ : @ -", field=field)
    return member_id


def parse_card_id(card_id: str, field: str = "id") -> int:
    if not _CARD_ID.fullmatch(card_id) or not 0 < int(card_id) <= MAX_CARD_ID:
        raise BadUserInputError(
            f"{field}: a gift card id is an integer from 1 to {MAX_CARD_ID}", field=field
        )
    return int(card_id)
