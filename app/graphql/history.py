"""The `giftcardTransactions` history: a cursor connection of transactions, its filter, its resolver."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.history import TransactionFilter
from app.domain.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from app.enums import CodeType, TransStatus, TransType
from app.graphql.context import Context
from app.graphql.types import GiftCardTransaction, PageInfo, build, connection, transaction_type


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


@strawberry.type
class HistoryQueries:
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
        # Sync on purpose: one indexed query on a pooled connection.
        transaction_filter = TransactionFilter() if filter is None else build(TransactionFilter, filter)
        page = info.context.services.history.list(
            info.context.principal, first=first, after=after, transaction_filter=transaction_filter
        )
        return connection(GiftCardTransactionConnection, GiftCardTransactionEdge, page, transaction_type)
