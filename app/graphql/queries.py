"""Query resolvers for cards: the lookup, the listing and the transaction history (the paged ones as
cursor connections with their filters), mapping arguments onto domain calls and views onto types."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.history import TransactionFilter
from app.domain.listing import CardFilter
from app.domain.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from app.enums import CardState, CodeType, TransStatus, TransType
from app.graphql.audit import record_disclosures
from app.graphql.context import Context
from app.graphql.types import (
    GiftCard,
    GiftCardSearchResult,
    GiftCardTransaction,
    PageInfo,
    build,
    card_type,
    connection,
    transaction_type,
)


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


@strawberry.input(description="Which transactions to list. Conditions combine with AND.")
class GiftCardTransactionFilter:
    giftcard_id: strawberry.ID | None = strawberry.field(default=None, description="Only this card's.")
    member_id: str | None = strawberry.field(
        default=None, description="Only transactions of this member's cards; needs ListGiftCards."
    )
    code: str | None = strawberry.field(
        default=None,
        description="Only transactions of the card holding this live code (with codeType); needs "
        "FindGiftCardByCode.",
    )
    code_type: CodeType | None = strawberry.field(
        default=None, description="The type of `code`; needs the type's Use… permission."
    )
    status: TransStatus | None = None
    trans_type: TransType | None = None
    source_id: str | None = None
    ref_no: str | None = None
    created_after: datetime | None = strawberry.field(
        default=None, description="Only transactions created at or after this time (with a time zone)."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Only transactions created before this time (with a time zone)."
    )


@strawberry.type(description="A transaction in the history, with the cursor that continues behind it.")
class GiftCardTransactionEdge:
    cursor: str
    node: GiftCardTransaction


@strawberry.type(description="One page of transactions, in the order they were created.")
class GiftCardTransactionConnection:
    edges: list[GiftCardTransactionEdge]
    page_info: PageInfo


# Every resolver here runs on the event loop, not in a worker thread: each is one or two indexed
# queries on a pooled connection. Only a disclosed code costs a write (its audit event), in a thread.
@strawberry.type
class CardQueries:
    @strawberry.field(
        description="Find gift cards by exactly one of: a code (FindGiftCardByCode and the code "
        "type's Use… permission), an internal id, or a member id (both ListGiftCards). Nothing "
        "found is an empty result, not an error."
    )
    async def giftcard(
        self,
        info: strawberry.Info[Context],
        code: str | None = None,
        code_type: CodeType | None = None,
        id: strawberry.ID | None = None,
        member_id: str | None = None,
    ) -> GiftCardSearchResult | None:
        result = info.context.services.lookup.find(
            info.context.principal, code=code, code_type=code_type, card_id=id, member_id=member_id
        )
        await record_disclosures(info, result.cards, supplied_code=code)
        return build(GiftCardSearchResult, result, results=[card_type(card) for card in result.cards])

    @strawberry.field(
        description=f"List gift cards page by page (ListGiftCards), oldest first. `first`: 1 to "
        f"{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); `after`: the endCursor of the previous page. "
        "Cards created meanwhile appear on later pages, never twice. Codes are masked as in lookups."
    )
    async def giftcards(
        self,
        info: strawberry.Info[Context],
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        filter: GiftCardFilter | None = None,
    ) -> GiftCardConnection | None:
        card_filter = None if filter is None else build(CardFilter, filter)
        page = info.context.services.listing.list(
            info.context.principal, first=first, after=after, card_filter=card_filter
        )
        await record_disclosures(info, [edge.node for edge in page.edges])
        return connection(GiftCardConnection, GiftCardEdge, page, card_type)

    @strawberry.field(
        description=f"Transaction history page by page (ListGiftCardTransactions), oldest first. "
        f"`first`: 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); `after`: the endCursor of "
        "the previous page. Transactions created meanwhile appear on later pages, never twice. "
        "Each row shows the card's balance before and after it."
    )
    def giftcard_transactions(
        self,
        info: strawberry.Info[Context],
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        filter: GiftCardTransactionFilter | None = None,
    ) -> GiftCardTransactionConnection | None:
        transaction_filter = None if filter is None else build(TransactionFilter, filter)
        page = info.context.services.history.list(
            info.context.principal, first=first, after=after, transaction_filter=transaction_filter
        )
        return connection(GiftCardTransactionConnection, GiftCardTransactionEdge, page, transaction_type)
