"""The `giftcards` listing: a Relay-style connection of cards, its filter, and its resolver."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.listing import CardFilter
from app.domain.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from app.enums import CardState, CodeType
from app.graphql.audit import record_disclosures
from app.graphql.context import Context
from app.graphql.types import GiftCard, PageInfo, build, card_type, connection


@strawberry.input(description="Which cards to list. Conditions combine with AND.")
class GiftCardFilter:
    state: CardState | None = strawberry.field(
        default=None, description="Only cards in this state (DEACTIVATED lists deactivated cards)."
    )
    member_id: str | None = strawberry.field(default=None, description="Only this member's cards.")
    code_type: CodeType | None = strawberry.field(
        default=None,
        description="Only cards with a live (not revoked) code of this type; needs the type's Use… "
        "permission.",
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Only cards created at or after this time (with a time zone)."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Only cards created before this time (with a time zone)."
    )
    include_deactivated: bool = strawberry.field(
        default=False,
        description="Also list DEACTIVATED cards (left out unless this is true or state asks for them).",
    )


@strawberry.type(description="A card in a listing, with the cursor that continues behind it.")
class GiftCardEdge:
    cursor: str
    node: GiftCard


@strawberry.type(description="One page of cards, in the order they were created.")
class GiftCardConnection:
    edges: list[GiftCardEdge]
    page_info: PageInfo
    limited_by_permission: bool = strawberry.field(
        description="True when a code on this page was left out or masked because of the caller's "
        "permissions."
    )


@strawberry.type
class ListingQueries:
    @strawberry.field(
        description=f"List gift cards page by page (ListGiftCards), oldest first. `first`: 1 to "
        f"{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); `after`: the endCursor of the previous "
        "page. Cards created meanwhile appear on later pages, never twice. Codes are masked as "
        "in lookups."
    )
    async def giftcards(
        self,
        info: strawberry.Info[Context],
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        filter: GiftCardFilter | None = None,
    ) -> GiftCardConnection | None:
        # Like `giftcard`: two indexed queries right here; only disclosed codes' audit events go to
        # a worker thread.
        card_filter = CardFilter() if filter is None else build(CardFilter, filter)
        page = info.context.services.listing.list(
            info.context.principal, first=first, after=after, card_filter=card_filter
        )
        await record_disclosures(info, [edge.node for edge in page.edges])
        return connection(GiftCardConnection, GiftCardEdge, page, card_type)
