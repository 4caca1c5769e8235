"""The ``stores`` query: the merchants or brands the caller acts on (DESIGN §11)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.entities import Store as StoreEntity
from app.graphql.context import Context
from app.graphql.types import build
from app.stores import DEFAULT_STORE, STORE_ID_RULE


@strawberry.type(description="A merchant or brand whose cards this server keeps; each card belongs to one.")
class Store:
    id: strawberry.ID = strawberry.field(
        description=f"The store's id, as tokens name it in their stores claim ({STORE_ID_RULE}); \""
        f'{DEFAULT_STORE}" for the store of a token without one.'
    )
    name: str | None = strawberry.field(description="A name people read, e.g. the brand's; null without one.")
    created_at: datetime = strawberry.field(description="When the store was added.")


def store_type(view: StoreEntity) -> Store:
    return build(Store, view, id=strawberry.ID(view.id))


@strawberry.type
class StoreQueries:
    @strawberry.field(
        description="The stores the caller acts on, by id (ListGiftCards): every store with AllStores, "
        "else those its token's stores claim names (the default store without a claim; none for an "
        "empty claim). FORBIDDEN, naming stores, when the claim names a store the server does not know."
    )
    async def stores(self, info: strawberry.Info[Context]) -> list[Store] | None:
        found = await info.context.read(
            lambda: info.context.services.store_listing.list(info.context.principal)
        )
        return [store_type(store) for store in found]
