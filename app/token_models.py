"""The payment tokens table (SQLModel, DESIGN §12): a single-use stand-in for a code and its PIN that
an untrusted front-end hands to its back end. Only a keyed hash of a token is kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.ids import new_id
from app.models import ID, UTCDateTime
from app.stores import DEFAULT_STORE


class PaymentToken(SQLModel, table=True):
    """A token for one code of one card, in the card's store; ``used_at`` is set by the transaction
    that spends it, in that transaction's database transaction."""

    __tablename__ = "payment_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_payment_tokens_token_hash"),
        Index("ix_payment_tokens_expires_at", "expires_at"),  # purging the expired
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    store_id: str = Field(
        default=DEFAULT_STORE, sa_column=Column(String(64), nullable=False, server_default=DEFAULT_STORE)
    )
    token_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    token_key_id: str = Field(sa_column=Column(String(32), nullable=False))  # the HMAC key's id
    giftcard_id: int = Field(
        sa_column=Column(ID, ForeignKey("giftcards.id", name="fk_payment_tokens_giftcard_id"), nullable=False)
    )
    # The code it stands for: a code revoked or expired since voids the token.
    code_id: int = Field(
        sa_column=Column(
            ID, ForeignKey("giftcard_codes.id", name="fk_payment_tokens_code_id"), nullable=False
        )
    )
    subject: str | None = Field(default=None, sa_column=Column(String(128)))  # who tokenized
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    transaction_id: int | None = Field(default=None, sa_column=Column(ID))  # the one that used it
