"""Mutation resolvers. Writes run in a worker thread so slow hashing never stalls the event loop."""

from __future__ import annotations

from functools import partial

import strawberry
from anyio.to_thread import run_sync

from app.domain.cards import CardDetails, NewCard, create_card
from app.graphql.context import Context
from app.graphql.types import GiftCard, GiftCardAddInput, card_type


@strawberry.type
class CardMutations:
    @strawberry.mutation(
        description="Create a gift card (CreateGiftCard). A generated PERSONAL code is returned in "
        "full once, here."
    )
    async def giftcard_add(self, info: strawberry.Info[Context], giftcard: GiftCardAddInput) -> GiftCard:
        services = info.context.services
        request = NewCard(
            currency=giftcard.currency,
            physical_code=giftcard.physical_code,
            physical_pin=giftcard.physical_pin,
            physical_code_expires_on=giftcard.physical_code_expires_on,
            external_code=giftcard.external_code,
            external_code_expires_on=giftcard.external_code_expires_on,
            add_personal_code=giftcard.add_personal_code,
            personal_code_expires_on=giftcard.personal_code_expires_on,
            member_id=giftcard.member_id,
            details=CardDetails(
                usable_from=giftcard.usable_from, expires_at=giftcard.expires_at,
                note=giftcard.note, source_id=giftcard.source_id, ref_no=giftcard.ref_no,
            ),
        )
        view = await run_sync(
            partial(create_card, services.uow, services.vault, services.pins,
                    info.context.principal, request,
                    default_currency=services.settings.default_currency)
        )
        return card_type(view)
