"""Query resolvers for cards: the lookup, the listing and the transaction history (the paged ones as
cursor connections with their filters), mapping arguments onto domain calls and views onto types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.domain.history import TransactionFilter
from app.domain.listing import CardFilter, CardPage
from app.domain.masking import SearchResult
from app.domain.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from app.graphql.audit import record_disclosures
from app.graphql.context import Context
from app.graphql.descriptions import (
    CARD_ID,
    CODE,
    CREATED_AFTER,
    CREATED_BEFORE,
    CURSOR,
    IN_STORE,
    LOCATION_ID,
    MEMBER_ID,
    PAGE_INFO,
    REF_NO,
    SOURCE_ID,
    After,
    Before,
    First,
    Last,
)
from app.graphql.enums import CardState, CodeType, GiftCardOrder, TransStatus, TransType
from app.graphql.payment_tokens import LookupToken
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
    member_id: str | None = strawberry.field(
        default=None, description=f"Only this member's cards: {MEMBER_ID}"
    )
    code_type: CodeType | None = strawberry.field(
        default=None,
        description="Only cards with a live (not revoked) code of this type; needs the type's Use… "
        "permission.",
    )
    created_after: datetime | None = strawberry.field(default=None, description=CREATED_AFTER)
    created_before: datetime | None = strawberry.field(default=None, description=CREATED_BEFORE)
    include_deactivated: bool = strawberry.field(
        default=False,
        description="Also list DEACTIVATED cards (left out unless this is true or state asks for them).",
    )
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only cards of this one of the token's stores."
    )
    code: str | None = strawberry.field(
        default=None,
        description="Only the card holding this live (not revoked) code: under codeType when given, "
        "else under the types the token may use (a code under two of them needs codeType). Needs the "
        f"type's Use… permission. An unknown code lists nothing. The code: {CODE}",
    )
    has_physical_code: bool | None = strawberry.field(
        default=None,
        description="true: only cards with a live PHYSICAL code (as codeType: PHYSICAL); false: only "
        "cards without one. Needs UsePhysicalGiftCardCodes.",
    )


@strawberry.type(description="A card in a listing, with the cursor that continues behind it.")
class GiftCardEdge:
    cursor: str = strawberry.field(
        description="Pass as `after` to continue behind this card, or as `before` to page back from it "
        "(with the same orderBy)."
    )
    node: GiftCard = strawberry.field(description="The card, its codes masked as in lookups.")


@strawberry.type(description="One page of cards, in the listing's order (orderBy).")
class GiftCardConnection:
    edges: list[GiftCardEdge] = strawberry.field(description="The cards of this page; empty when none.")
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    limited_by_permission: bool = strawberry.field(
        description="True when a code on this page was left out or masked because of the caller's "
        "permissions."
    )


@strawberry.input(description="Which transactions to list. Conditions combine with AND.")
class GiftCardTransactionFilter:
    giftcard_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"Only this card's. {CARD_ID}"
    )
    member_id: str | None = strawberry.field(
        default=None, description="Only transactions of this member's cards; needs ListGiftCards."
    )
    code: str | None = strawberry.field(
        default=None,
        description="Only transactions of the card holding this live code (with codeType); needs "
        f"FindGiftCardByCode. The code: {CODE}",
    )
    code_type: CodeType | None = strawberry.field(
        default=None, description="The type of `code`; needs the type's Use… permission."
    )
    status: TransStatus | None = strawberry.field(
        default=None, description="Only transactions in this status (EXPIRED: lapsed holds)."
    )
    trans_type: TransType | None = strawberry.field(
        default=None, description="Only transactions of this type."
    )
    source_id: str | None = strawberry.field(default=None, description=f"Only this sourceId. {SOURCE_ID}")
    ref_no: str | None = strawberry.field(default=None, description=f"Only this refNo. {REF_NO}")
    location_id: str | None = strawberry.field(
        default=None, description=f"Only those at this locationId (exact match). {LOCATION_ID}"
    )
    created_after: datetime | None = strawberry.field(default=None, description=CREATED_AFTER)
    created_before: datetime | None = strawberry.field(default=None, description=CREATED_BEFORE)
    store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only transactions of this one of the token's stores."
    )


@strawberry.type(description="A transaction in the history, with the cursor that continues behind it.")
class GiftCardTransactionEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: GiftCardTransaction = strawberry.field(description="The transaction.")


@strawberry.type(description="One page of transactions, in the order they were created.")
class GiftCardTransactionConnection:
    edges: list[GiftCardTransactionEdge] = strawberry.field(
        description="The transactions of this page; empty when none."
    )
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)


LookupCode = Annotated[
    str | None, strawberry.argument(description=f"Find the card holding this live code: {CODE}")
]
LookupCodeType = Annotated[
    CodeType | None,
    strawberry.argument(
        description="Only with code: look under this type only (needs its Use… permission). Needed when "
        "the code exists under two types."
    ),
]
LookupId = Annotated[
    strawberry.ID | None, strawberry.argument(description=f"Find the card by its id. {CARD_ID}")
]
LookupMember = Annotated[str | None, strawberry.argument(description=f"Find a member's cards: {MEMBER_ID}")]
LookupStore = Annotated[strawberry.ID | None, strawberry.argument(description=IN_STORE)]


# Every resolver here reads in a worker thread (and writes there the audit event of a disclosed
# code): a slow database then holds up that request alone, never the worker's event loop.
@strawberry.type
class CardQueries:
    @strawberry.field(
        description="Find gift cards by exactly one of: a code (FindGiftCardByCode and the code "
        "type's Use… permission), an internal id, or a member id (both ListGiftCards), or a payment "
        "token. Nothing found is an empty result, not an error."
    )
    async def giftcard(  # noqa: PLR0913  (its arguments are the API's)
        self,
        info: strawberry.Info[Context],
        code: LookupCode = None,
        code_type: LookupCodeType = None,
        id: LookupId = None,
        member_id: LookupMember = None,
        store_id: LookupStore = None,
        token: LookupToken = None,
    ) -> GiftCardSearchResult | None:
        context = info.context

        def find() -> SearchResult:
            found = context.services.lookup.find(
                context.principal,
                code=code,
                code_type=code_type,
                card_id=id,
                member_id=member_id,
                store_id=store_id,
                token=token,
            )
            record_disclosures(context, found.cards, supplied_code=code)
            return found

        result = await context.read(find)
        return build(GiftCardSearchResult, result, results=[card_type(card) for card in result.cards])

    @strawberry.field(
        description=f"List gift cards page by page (ListGiftCards), oldest first unless orderBy says "
        f"otherwise. Forward: `first` (1 to {MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}) cards "
        "after `after`, the endCursor of the previous page; backward: the `last` cards before "
        "`before`, the startCursor of the page after. Not both directions at once (first with last "
        "or before, after with before or last). Edges are in the listing's order either way. Cards "
        "created meanwhile appear on later pages, never twice. Codes are masked as in lookups."
    )
    async def giftcards(  # noqa: PLR0913  (its arguments are the API's)
        self,
        info: strawberry.Info[Context],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            GiftCardFilter | None,
            strawberry.argument(description="Which cards; left out: all but DEACTIVATED."),
        ] = None,
        order_by: Annotated[
            GiftCardOrder | None,
            strawberry.argument(
                description="The order of the cards (and of their cursors); null: the default."
            ),
        ] = GiftCardOrder.CREATED_ASC,
    ) -> GiftCardConnection | None:
        card_filter = None if filter is None else build(CardFilter, filter)
        context = info.context

        def listed() -> CardPage:
            found = context.services.listing.list(
                context.principal,
                first=first,
                after=after,
                last=last,
                before=before,
                order=order_by or GiftCardOrder.CREATED_ASC,
                card_filter=card_filter,
            )
            record_disclosures(context, [edge.node for edge in found.edges])
            return found

        page = await context.read(listed)
        return connection(GiftCardConnection, GiftCardEdge, page, card_type)

    @strawberry.field(
        description=f"Transaction history page by page (ListGiftCardTransactions), oldest first. "
        f"`first`: 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); `after`: the endCursor of "
        "the previous page. Transactions created meanwhile appear on later pages, never twice. "
        "Each row shows the card's balance before and after it."
    )
    async def giftcard_transactions(
        self,
        info: strawberry.Info[Context],
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
        filter: Annotated[
            GiftCardTransactionFilter | None,
            strawberry.argument(description="Which transactions; left out: all."),
        ] = None,
    ) -> GiftCardTransactionConnection | None:
        transaction_filter = None if filter is None else build(TransactionFilter, filter)
        history, principal = info.context.services.history, info.context.principal
        page = await info.context.read(
            lambda: history.list(principal, first=first, after=after, transaction_filter=transaction_filter)
        )
        return connection(GiftCardTransactionConnection, GiftCardTransactionEdge, page, transaction_type)
