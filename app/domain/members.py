"""Member ids: the customer a card (and every PERSONAL code) belongs to."""

from __future__ import annotations

import re

from app.errors import BadUserInputError

_MEMBER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")


def validate_member_id(member_id: str, field: str = "memberId") -> str:
    if not _MEMBER_ID.fullmatch(member_id):
        raise BadUserInputError(f"{field}: 1 to 64 letters, digits or . _ : @ -", field=field)
    return member_id
