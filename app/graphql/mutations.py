"""Mutation resolvers: map inputs onto domain calls. Writes run in a worker thread, so slow
hashing and database waits never stall the event loop. Every mutation takes ``idempotencyKey``."""

from __future__ import annotations

from itertools import compress
from typing import Annotated, Any

import strawberry
from anyio.to_thread import run_sync
from strawberry import UNSET
from strawberry.types.field import StrawberryField

from app.domain.card_requests import CLEARABLE, CardDetails, CardEdit, CodeChanges, NewCard
from app.enums import Operation
from app.graphql.context import Context
from app.graphql.descriptions import CARD_ID
from app.graphql.enums import CodeType
from app.graphql.inputs import GiftCardAddInput, GiftCardEditInput
from app.graphql.types import GiftCard, build, card_type

IdempotencyKey = Annotated[
    str | None,
    strawberry.argument(
        description="1 to 128 characters, scoped to the token's subject. A retry with the same key and "
        "input returns the first response and writes nothing; the same key with other input is a "
        "CONFLICT. Keys are kept at least 24 hours."
    ),
]
CardId = Annotated[strawberry.ID, strawberry.argument(description=f"The card. {CARD_ID}")]
Reason = Annotated[
    str | None,
    strawberry.argument(
        description="Why, in up to 255 characters; recorded with the state change in the card's history."
    ),
]


def _details_and_clears(giftcard: GiftCardEditInput) -> dict[str, Any]:
    """The edit's operator fields as the domain takes them: those given (``details``), and those
    given as null (``clear``, None when none); a field left out (UNSET) is in neither."""
    given = {name: getattr(giftcard, name) for name in CLEARABLE}
    clear = frozenset(name for name, value in given.items() if value is None)
    details = CardDetails(
        **{name: value for name, value in given.items() if value is not None and value is not UNSET}
    )
    return {"details": details, "clear": clear or None}


def _state_change(operation: Operation, description: str) -> StrawberryField:
    """A mutation that moves a card to another state, as the lifecycle's rules for ``operation`` say."""

    async def change(
        info: strawberry.Info[Context],
        id: CardId,
        reason: Reason = None,
        idempotency_key: IdempotencyKey = None,
    ) -> GiftCard | None:
        lifecycle, principal = info.context.services.lifecycle, info.context.principal
        view = await run_sync(lifecycle.change, principal, operation, str(id), reason, idempotency_key)
        return card_type(view)

    return strawberry.mutation(change, description=description)


@strawberry.type
class CardMutations:
    @strawberry.mutation(
        description="Create a gift card (CreateGiftCard; with initialValue, GiftCardTransAdd as well). "
        "A generated PERSONAL code is returned in full once, here."
    )
    async def giftcard_add(
        self,
        info: strawberry.Info[Context],
        giftcard: Annotated[GiftCardAddInput, strawberry.argument(description="The new card.")],
        idempotency_key: IdempotencyKey = None,
    ) -> GiftCard | None:
        codes, details = build(CodeChanges, giftcard), build(CardDetails, giftcard)
        request = build(NewCard, giftcard, codes=codes, details=details)
        cards = info.context.services.cards
        return card_type(await run_sync(cards.create, info.context.principal, request, idempotency_key))

    @strawberry.mutation(
        description="Change a card's codes, member, state (enabled) and operator fields (EditGiftCard), all "
        "in one transaction: a refusal changes nothing. Adding a code of a type the card has replaces it; "
        "new codes are shown in full in this response."
    )
    async def giftcard_edit(
        self,
        info: strawberry.Info[Context],
        giftcard: Annotated[
            GiftCardEditInput, strawberry.argument(description="The card (id) and what to change on it.")
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> GiftCard | None:
        asked = (giftcard.revoke_physical_code, giftcard.revoke_external_code, giftcard.revoke_personal_code)
        revoke = frozenset(compress((CodeType.PHYSICAL, CodeType.EXTERNAL, CodeType.PERSONAL), asked))
        request = build(
            CardEdit,
            giftcard,
            card_id=str(giftcard.id),
            codes=build(CodeChanges, giftcard),
            revoke=revoke,
            unlock_pin=giftcard.unlock_physical_pin,
            **_details_and_clears(giftcard),
        )
        cards = info.context.services.cards
        return card_type(await run_sync(cards.edit, info.context.principal, request, idempotency_key))

    giftcard_block = _state_change(
        Operation.BLOCK_CARD,
        "Block a card, e.g. reported lost (BlockGiftCard). Repeating it changes nothing.",
    )
    giftcard_unblock = _state_change(
        Operation.UNBLOCK_CARD,
        "Unblock a card (BlockGiftCard): ACTIVE again if it was ever "
        "funded, else PENDING. Repeating it changes nothing.",
    )
    giftcard_deactivate = _state_change(
        Operation.DEACTIVATE_CARD,
        "Deactivate a card for good (DeactivateGiftCard); its open authorizations are cancelled. "
        "Cards are never deleted and the history stays. Repeating it changes nothing.",
    )
