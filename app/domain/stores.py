"""Which stores a caller may read about (the ``stores`` query): every store for ``AllStores``, else
the stores its token names, once each is known to exist."""

from __future__ import annotations

from app.entities import Store
from app.policy import Permission, Principal
from app.store.stores import StoreDirectory


class StoreListing:
    def __init__(self, directory: StoreDirectory) -> None:
        self._directory = directory

    def list(self, principal: Principal) -> list[Store]:
        """The caller's stores by id (ListGiftCards); FORBIDDEN naming the claim when it names a store
        the server does not know."""
        principal.require(Permission.LIST_GIFT_CARDS)
        store_ids = principal.store_ids()
        if store_ids == ():  # an empty claim: no store, and no query to learn that
            return []
        return self._directory.list(store_ids)
