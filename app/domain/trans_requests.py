"""What a transaction request (giftcardTransAdd) asks for, as the ledger takes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from app.enums import CodeType, TransType


@dataclass(frozen=True)
class TransRequest:
    # An idempotency key covers the request; location_id only when given (app.domain.idempotency).
    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ("location_id", "store_id", "token")

    trans_type: TransType
    amount: str
    code_type: CodeType | None = None
    code: str | None = None
    pin: str | None = None
    giftcard_id: str | None = None
    authorize_only: bool = False
    allow_partial: bool = False
    source_id: str | None = None
    ref_no: str | None = None
    note: str | None = None
    location_id: str | None = None  # where it happened, as the caller names it
    store_id: str | None = None  # only this one of the caller's stores (a code in two of them)
    token: str | None = None  # a giftcardTokenize token instead of a code (app.domain.payment_tokens)
