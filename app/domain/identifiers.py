"""Identifiers and free text callers pass in: gift card and transaction ids, member ids, locations,
operator text."""

from __future__ import annotations

import re

from app.errors import BadUserInputError
from app.ids import MAX_ID

_MEMBER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_CARD_ID = re.compile(r"[0-9]{1,19}")
MAX_CARD_ID = MAX_ID  # ids are 64-bit (app/ids.py); those from before are small and stay valid
MAX_LOCATION_ID = 64


def validate_member_id(member_id: str, field: str = "member_id") -> str:
    if not _MEMBER_ID.fullmatch(member_id):
        raise BadUserInputError(f"{field}: 1 to 64 letters, digits or . _ : @ -", field=field)
    return member_id


def parse_card_id(card_id: str, field: str = "id") -> int:
    if not _CARD_ID.fullmatch(card_id) or not 0 < int(card_id) <= MAX_CARD_ID:
        raise BadUserInputError(f"{field}: a gift card id is an integer from 1 to {MAX_CARD_ID}", field=field)
    return int(card_id)


def check_text(text: str | None, name: str, limit: int, *, multiline: bool = False) -> None:
    """Free text from operators: bounded, and no control characters (NUL breaks PostgreSQL)."""
    if text is None:
        return
    if len(text) > limit:
        raise BadUserInputError(f"{name}: at most {limit} characters", field=name)
    allowed = "\n\t" if multiline else ""
    if any(not char.isprintable() and char not in allowed for char in text):
        raise BadUserInputError(f"{name}: control characters are not allowed", field=name)


def check_location_id(location_id: str | None, field: str = "location_id") -> None:
    """Where a transaction happened, as the caller names it (Square's location_id): free text, 1 to 64
    characters, compared exactly, so neither blank nor with spaces around it that a filter would miss."""
    if location_id is None:
        return
    check_text(location_id, field, MAX_LOCATION_ID)
    if not location_id.strip() or location_id != location_id.strip():
        raise BadUserInputError(
            f"{field}: 1 to {MAX_LOCATION_ID} characters, not blank, no spaces at either end", field=field
        )
