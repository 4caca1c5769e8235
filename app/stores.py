"""Store ids (DESIGN §11): every card belongs to one store, and a caller acts on its stores only.

A store id is the operator's own short name for a merchant or brand: 1 to 64 letters, digits, ``.``,
``_`` or ``-``, compared exactly. The default store exists from the first migration; a token without
a ``stores`` claim acts on it alone, so a one-store deployment never names a store.
"""

from __future__ import annotations

import re

from app.errors import BadUserInputError

DEFAULT_STORE = "default"
MAX_STORE_ID_LENGTH = 64
MAX_STORE_NAME_LENGTH = 128
MAX_STORES_PER_TOKEN = 100  # ids in one `stores` claim or client entry
STORE_ID_RULE = f"1 to {MAX_STORE_ID_LENGTH} letters, digits, '.', '_' or '-'"
_STORE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_store_id(value: object) -> bool:
    return isinstance(value, str) and _STORE_ID.fullmatch(value) is not None


def validate_store_id(value: str, field: str = "store_id") -> str:
    """``value`` if it is a well-formed store id; BAD_USER_INPUT naming ``field`` otherwise."""
    if not is_store_id(value):
        raise BadUserInputError(
            f"{field}: a store id is {STORE_ID_RULE}",
            field=field,
        )
    return value


def validate_store_name(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_STORE_NAME_LENGTH or not value.isprintable():
        raise BadUserInputError(
            f"name: 1 to {MAX_STORE_NAME_LENGTH} printable characters, not only spaces", field="name"
        )
    return value
