"""Transactions: giftcardTransAdd, giftcardTransCapture, giftcardTransCancel."""

from __future__ import annotations

from datetime import datetime
from functools import partial

import strawberry
from anyio.to_thread import run_sync

from app.domain.ledger import TransactionView, TransRequest
from app.domain.money import format_amount
from app.enums import CodeType, TransStatus, TransType
from app.graphql.context import Context
from app.graphql.mutations import IdempotencyKey

strawberry.enum(
    TransType, description="ADD (positive), USE (negative), ADJUST / EXTERNAL / IMPORT (either sign)."
)
strawberry.enum(TransStatus, description="AUTHORIZED holds funds until captured or cancelled.")


@strawberry.type(description="One ledger entry, with the card's balances after it.")
class GiftCardTransaction:
    id: strawberry.ID
    giftcard_id: strawberry.ID
    trans_type: TransType
    status: TransStatus
    amount: str = strawberry.field(description="Decimal string; for a partial debit, what was debited.")
    currency: str
    balance: str = strawberry.field(description="The card's balance after this transaction.")
    available_balance: str = strawberry.field(description="The balance minus open debit holds.")
    balance_before: str
    balance_after: str
    authorized_amount: str | None
    hold_expires_at: datetime | None
    partial: bool = strawberry.field(description="True when allowPartial debited less than asked.")
    source_id: str | None
    ref_no: str | None
    note: str | None
    created_at: datetime
    settled_at: datetime | None


@strawberry.input(description="A transaction, addressed by codeType + code (+ pin) or by giftcardId.")
class GiftCardTransInput:
    trans_type: TransType
    amount: str = strawberry.field(description='Decimal string in the card\'s currency, e.g. "-6.49".')
    code_type: CodeType | None = None
    code: str | None = None
    pin: str | None = None
    giftcard_id: strawberry.ID | None = strawberry.field(default=None, description="Needs ListGiftCards.")
    authorize_only: bool = strawberry.field(
        default=False, description="Create an AUTHORIZED transaction to capture or cancel later.")
    allow_partial: bool = strawberry.field(
        default=False, description="Debit what is available when it is less than asked (then partial).")
    source_id: str | None = None
    ref_no: str | None = None
    note: str | None = None


def transaction_type(view: TransactionView) -> GiftCardTransaction:
    money = partial(format_amount, currency=view.currency)
    return GiftCardTransaction(
        id=strawberry.ID(str(view.id)), giftcard_id=strawberry.ID(str(view.giftcard_id)),
        trans_type=view.trans_type, status=view.status, amount=money(view.amount),
        currency=view.currency, balance=money(view.balance), available_balance=money(view.available_balance),
        balance_before=money(view.balance_before), balance_after=money(view.balance_after),
        authorized_amount=None if view.authorized_amount is None else money(view.authorized_amount),
        hold_expires_at=view.hold_expires_at, partial=view.partial, source_id=view.source_id,
        ref_no=view.ref_no, note=view.note, created_at=view.created_at, settled_at=view.settled_at,
    )


@strawberry.type
class TransactionMutations:
    @strawberry.mutation(description="Add a transaction (GiftCardTrans<Type> and the code type's Use… "
                         "permission).")
    async def giftcard_trans_add(self, info: strawberry.Info[Context], trans: GiftCardTransInput,
                                 idempotency_key: IdempotencyKey = None) -> GiftCardTransaction:
        request = TransRequest(
            trans_type=trans.trans_type, amount=trans.amount, code_type=trans.code_type, code=trans.code,
            pin=trans.pin, giftcard_id=None if trans.giftcard_id is None else str(trans.giftcard_id),
            authorize_only=trans.authorize_only, allow_partial=trans.allow_partial,
            source_id=trans.source_id, ref_no=trans.ref_no, note=trans.note,
        )
        ledger = info.context.services.ledger
        view = await run_sync(partial(ledger.create, info.context.principal, request, idempotency_key))
        return transaction_type(view)

    @strawberry.mutation(description="Complete an AUTHORIZED transaction; a smaller debit amount "
                         "releases the rest.")
    async def giftcard_trans_capture(self, info: strawberry.Info[Context], id: strawberry.ID,
                                     amount: str | None = None,
                                     idempotency_key: IdempotencyKey = None) -> GiftCardTransaction:
        ledger = info.context.services.ledger
        view = await run_sync(partial(ledger.capture, info.context.principal, str(id), amount,
                                      idempotency_key))
        return transaction_type(view)

    @strawberry.mutation(description="Cancel an AUTHORIZED transaction, releasing its hold.")
    async def giftcard_trans_cancel(self, info: strawberry.Info[Context], id: strawberry.ID,
                                    idempotency_key: IdempotencyKey = None) -> GiftCardTransaction:
        ledger = info.context.services.ledger
        view = await run_sync(partial(ledger.cancel, info.context.principal, str(id), idempotency_key))
        return transaction_type(view)
