"""Transactions: giftcardTransAdd, giftcardTransCapture, giftcardTransCancel (the GiftCardTransaction
type they return is in :mod:`app.graphql.types`, beside the card that lists it)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import strawberry

from app.domain.authorizations import addressed
from app.domain.trans_requests import TransRequest
from app.graphql.context import MONEY, Context
from app.graphql.descriptions import (
    AMOUNT,
    CARD_ID,
    CODE,
    IN_STORE,
    LOCATION_ID,
    NOTE,
    REF_NO,
    SOURCE_ID,
    TRANSACTION_ID,
)
from app.graphql.enums import CodeType, TransType
from app.graphql.flat_inputs import flat_input
from app.graphql.mutations import IdempotencyKey
from app.graphql.payment_tokens import TOKEN, PaymentTokenMutations
from app.graphql.types import GiftCardTransaction, build, transaction_type


@flat_input
@strawberry.input(
    description="A transaction, addressed by codeType + code (+ pin), by giftcardId or by a payment token."
)
class GiftCardTransInput:
    trans_type: TransType = strawberry.field(
        description="The kind of transaction; it sets the sign of amount."
    )
    amount: str = strawberry.field(
        description=f"{AMOUNT} Not zero, no more decimals than the currency has; ADD positive, USE negative."
    )
    code_type: CodeType | None = strawberry.field(
        default=None, description="The type of code (with code); needs the type's Use… permission."
    )
    code: str | None = strawberry.field(default=None, description=f"The card's code (with codeType): {CODE}")
    pin: str | None = strawberry.field(
        default=None, description="The PHYSICAL code's PIN, 4 to 12 digits; needed when the code has one."
    )
    giftcard_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"Address the card by id instead of a code; needs ListGiftCards. {CARD_ID}"
    )
    authorize_only: bool = strawberry.field(
        default=False, description="Create an AUTHORIZED transaction to capture or cancel later."
    )
    allow_partial: bool = strawberry.field(
        default=False, description="Debit what is available when it is less than asked (then partial)."
    )
    source_id: str | None = strawberry.field(default=None, description=SOURCE_ID)
    ref_no: str | None = strawberry.field(default=None, description=REF_NO)
    location_id: str | None = strawberry.field(default=None, description=LOCATION_ID)
    note: str | None = strawberry.field(default=None, description=NOTE)
    store_id: strawberry.ID | None = strawberry.field(default=None, description=f"With a code: {IN_STORE}")
    token: str | None = strawberry.field(
        default=None,
        description="Address the card by a payment token instead (no codeType, code, pin or giftcardId): "
        "a committed transaction, an authorization too, uses it up. " + TOKEN,
    )


TransactionId = Annotated[
    strawberry.ID | None,
    strawberry.argument(description=f"The AUTHORIZED transaction (or give authCode). {TRANSACTION_ID}"),
]
AuthCode = Annotated[
    str | None,
    strawberry.argument(
        description="The AUTHORIZED transaction by the authCode its authorization answered, instead of `id` "
        "(exactly one of the two); case, spaces and dashes do not matter."
    ),
]
SettledAt = Annotated[
    str | None,
    strawberry.argument(
        description=f"Where it is settled; left out: the location it was authorized at. {LOCATION_ID}"
    ),
]


@strawberry.type
class TransactionMutations(PaymentTokenMutations):  # giftcardTokenize: a token to transact by
    @strawberry.mutation(
        description="Add a transaction (GiftCardTrans<Type> and the code type's Use… permission)."
    )
    async def giftcard_trans_add(
        self,
        info: strawberry.Info[Context],
        trans: Annotated[GiftCardTransInput, strawberry.argument(description="The transaction.")],
        idempotency_key: IdempotencyKey = None,
    ) -> GiftCardTransaction | None:
        ledger, principal = info.context.services.ledger, info.context.principal
        view = await MONEY.run(partial(ledger.create, principal, build(TransRequest, trans), idempotency_key))
        return transaction_type(view)

    @strawberry.mutation(
        description="Complete an AUTHORIZED transaction before its hold lapses (its type's GiftCardTrans… "
        "permission; without ListGiftCards, only the caller's own). A smaller debit amount releases the rest."
    )
    async def giftcard_trans_capture(
        self,
        info: strawberry.Info[Context],
        id: TransactionId = None,
        amount: Annotated[
            str | None,
            strawberry.argument(
                description=f"What to settle: same sign as the authorization, no larger. {AMOUNT} "
                "Left out: the amount authorized."
            ),
        ] = None,
        idempotency_key: IdempotencyKey = None,
        location_id: SettledAt = None,
        auth_code: AuthCode = None,
    ) -> GiftCardTransaction | None:
        ledger, principal = info.context.services.ledger, info.context.principal
        target = addressed(id, auth_code)
        captured = await MONEY.run(
            partial(ledger.capture, principal, target, amount, idempotency_key, location_id)
        )
        return transaction_type(captured)

    @strawberry.mutation(
        description="Cancel an AUTHORIZED transaction, releasing its hold (its type's GiftCardTrans… "
        "permission; without ListGiftCards, only the caller's own)."
    )
    async def giftcard_trans_cancel(
        self,
        info: strawberry.Info[Context],
        id: TransactionId = None,
        idempotency_key: IdempotencyKey = None,
        location_id: SettledAt = None,
        auth_code: AuthCode = None,
    ) -> GiftCardTransaction | None:
        ledger, principal = info.context.services.ledger, info.context.principal
        target = addressed(id, auth_code)
        cancelled = await MONEY.run(partial(ledger.cancel, principal, target, idempotency_key, location_id))
        return transaction_type(cancelled)
