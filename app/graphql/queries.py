"""Query resolvers: map arguments onto domain calls and domain views onto GraphQL types."""

from __future__ import annotations

import strawberry

from app.enums import CodeType
from app.graphql.audit import record_disclosures
from app.graphql.context import Context
from app.graphql.types import GiftCardSearchResult, search_result_type


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
        # The lookup runs right here, not in a worker thread: it is one indexed query on a pooled
        # connection. Only a disclosed code costs a write (its audit event), and that goes to a thread.
        result = info.context.services.lookup.find(
            info.context.principal, code=code, code_type=code_type, card_id=id, member_id=member_id
        )
        await record_disclosures(info, result.cards, supplied_code=code)
        return search_result_type(result)
