"""giftcardTokenize (DESIGN §12): a code and its PIN exchanged for a short-lived, single-use payment
token that a back end looks the card up by (giftcard(token:)) and spends (giftcardTransAdd by token)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from anyio.to_thread import run_sync

from app.domain.payment_tokens import TokenRequest
from app.graphql.context import Context
from app.graphql.descriptions import CODE, IN_STORE
from app.graphql.enums import CodeType
from app.graphql.mutations import IdempotencyKey

TOKEN = (
    'A payment token from giftcardTokenize: "gct_" and 32 letters, digits, "-" or "_". Single use, '
    "short-lived, bound to one card and code in the card's store."
)
# giftcard(token:), the fourth way into the lookup (app.graphql.queries).
LookupToken = Annotated[
    str | None,
    strawberry.argument(
        description="Find the card a payment token stands for, without using it up (FindGiftCardByCode "
        "and the Use… permission of its code's type), its codes masked unless the token may see them "
        "without holding them (ListGiftCards, or the type's unmask permission). A token that is used, "
        f"expired, of another store or malformed finds nothing. {TOKEN}"
    ),
]


@strawberry.type(description="A payment token: shown once, stored only as a keyed hash.")
class PaymentToken:
    token: str = strawberry.field(description=TOKEN)
    expires_at: datetime = strawberry.field(
        description="When it stops working unless a transaction has used it up before "
        "(GIFTCARDS_PAYMENT_TOKEN_TTL_SECONDS after it was made)."
    )


@strawberry.type
class PaymentTokenMutations:
    @strawberry.mutation(
        description="Exchange a code (and its PIN) for a payment token that a back end can look the card "
        "up by and spend, never seeing the code or PIN (FindGiftCardByCode and the code type's Use… "
        "permission). Checked as a debit by code checks the code: attempt budget, PIN and PIN lockout; "
        "without ListGiftCards every failure is the same CARD_NOT_USABLE."
    )
    async def giftcard_tokenize(
        self,
        info: strawberry.Info[Context],
        code: Annotated[str, strawberry.argument(description=f"The card's code: {CODE}")],
        code_type: Annotated[
            CodeType | None,
            strawberry.argument(
                description="The code's type (needs its Use… permission); left out: every type the "
                "token may use. Needed when the code exists under two types."
            ),
        ] = None,
        pin: Annotated[
            str | None,
            strawberry.argument(
                description="The PHYSICAL code's PIN, 4 to 12 digits; needed when it has one."
            ),
        ] = None,
        store_id: Annotated[strawberry.ID | None, strawberry.argument(description=IN_STORE)] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> PaymentToken | None:
        tokens, principal = info.context.services.payment_tokens, info.context.principal
        request = TokenRequest(code, code_type, pin, None if store_id is None else str(store_id))
        issued = await run_sync(tokens.tokenize, principal, request, idempotency_key)
        return PaymentToken(token=issued.token, expires_at=issued.expires_at)
