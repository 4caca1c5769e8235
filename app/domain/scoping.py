"""Which store a request acts on (DESIGN §11): a ``storeId`` argument narrows the caller to one of
its stores, and a new card goes to the one store the caller names or has.

A store outside the caller's reads exactly as one that does not exist: narrowing to it finds
nothing, and a card cannot be created there (NOT_FOUND, the same for both).
"""

from __future__ import annotations

import dataclasses

from app.errors import BadUserInputError, ForbiddenError, NotFoundError
from app.policy import Permission, Principal
from app.stores import validate_store_id

NO_SUCH_STORE = "store_id: no such store"


def narrow(principal: Principal, store_id: str | None) -> Principal:
    """The caller acting on ``store_id`` alone (unchanged when None). A store outside its own
    leaves it no store at all, so nothing is found, as for a store that does not exist."""
    if store_id is None:
        return principal
    validate_store_id(store_id)
    stores = principal.store_ids()
    if stores is None:  # every store: now this one only
        permissions = principal.permissions - {Permission.ALL_STORES.value}
        return dataclasses.replace(principal, permissions=permissions, stores=frozenset({store_id}))
    return dataclasses.replace(principal, stores=frozenset({store_id} & set(stores)))


def home_store(principal: Principal, store_id: str | None) -> str:
    """The store a new record goes to: ``store_id`` if the caller acts on it (for a caller of every
    store, the caller checks it exists), else the caller's one store (a caller of every store, or
    of several, says which)."""
    stores = principal.store_ids()
    if store_id is not None:
        validate_store_id(store_id)
        if stores is not None and store_id not in stores:
            raise NotFoundError(NO_SUCH_STORE, field="store_id")
        return store_id
    if stores is None:
        raise BadUserInputError("store_id: the token acts on every store; say which", field="store_id")
    named = sorted(principal.stores)
    if len(named) == 1:
        return named[0]
    if not named:
        raise ForbiddenError("the token acts on no store", field="stores")
    raise BadUserInputError("store_id: the token acts on several stores; say which", field="store_id")
