"""Transactions: giftcardTransAdd, giftcardTransCapture, giftcardTransCancel (the GiftCardTransaction
type they return is in :mod:`app.graphql.types`, beside the card that lists it)."""

from __future__ import annotations

import strawberry
from anyio.to_thread import run_sync

from app.domain.ledger import TransRequest
from app.enums import CodeType, TransType
from app.graphql.context import Context
from app.graphql.mutations import IdempotencyKey
from app.graphql.types import GiftCardTransaction, build, transaction_type


@strawberry.input(description="A transaction, addressed by codeType + code (+ pin) or by giftcardId.")
class GiftCardTransInput:
    trans_type: TransType
    amount: str = strawberry.field(description='Decimal string in the card\'s currency, e.g. "-6.49".')
    code_type: CodeType | None = None
    code: str | None = None
    pin: str | None = None
    giftcard_id: strawberry.ID | None = strawberry.field(default=None, description="Needs ListGiftCards.")
    authorize_only: bool = strawberry.field(
        default=False, description="Create an AUTHORIZED transaction to capture or cancel later."
    )
    allow_partial: bool = strawberry.field(
        default=False, description="Debit what is available when it is less than asked (then partial)."
    )
    source_id: str | None = None
    ref_no: str | None = None
    note: str | None = None


@strawberry.type
class TransactionMutations:
    @strawberry.mutation(
        description="Add a transaction (GiftCardTrans<Type> and the code type's Use… permission)."
    )
    async def giftcard_trans_add(
        self,
        info: strawberry.Info[Context],
        trans: GiftCardTransInput,
        idempotency_key: IdempotencyKey = None,
    ) -> GiftCardTransaction | None:
        ledger, principal = info.context.services.ledger, info.context.principal
        view = await run_sync(ledger.create, principal, build(TransRequest, trans), idempotency_key)
        return transaction_type(view)

    @strawberry.mutation(
        description="Complete an AUTHORIZED transaction; a smaller debit amount releases the rest."
    )
    async def giftcard_trans_capture(
        self,
        info: strawberry.Info[Context],
        id: strawberry.ID,
        amount: str | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> GiftCardTransaction | None:
        ledger, principal = info.context.services.ledger, info.context.principal
        return transaction_type(await run_sync(ledger.capture, principal, str(id), amount, idempotency_key))

    @strawberry.mutation(description="Cancel an AUTHORIZED transaction, releasing its hold.")
    async def giftcard_trans_cancel(
        self, info: strawberry.Info[Context], id: strawberry.ID, idempotency_key: IdempotencyKey = None
    ) -> GiftCardTransaction | None:
        ledger, principal = info.context.services.ledger, info.context.principal
        return transaction_type(await run_sync(ledger.cancel, principal, str(id), idempotency_key))
