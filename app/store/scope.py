"""The store condition every read and write of card-owned rows carries (DESIGN §11): a caller acts
on its stores only, so a row of another store is never found, listed, changed or counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, false

# The caller's stores, sorted (Principal.store_ids()); None: every store.
Stores = tuple[str, ...] | None


def in_stores(column: Any, stores: Sequence[Any] | None) -> list[ColumnElement[bool]]:
    """``column`` among ``stores`` (ids, or bind parameters for them): no condition for every
    store; none at all matches nothing (a token with an empty ``stores`` claim acts on no store)."""
    if stores is None:
        return []
    return [column.in_(list(stores))] if stores else [false()]
