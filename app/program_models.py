"""The programs table (SQLModel): a store's rules for its cards, beside the card tables of
:mod:`app.models`. Amounts are minor units of the program's currency."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from app.ids import new_id
from app.models import ID, UTCDateTime

EXPIRY_KINDS = ("NONE", "AFTER_ISSUE", "AFTER_ACTIVITY")


class Program(SQLModel, table=True):
    """Currency, generated code format, allowed values, expiry and limits of a store's cards (DESIGN
    §11); ``denominations`` is a JSON list of minor units. Never deleted: cards name it."""

    __tablename__ = "programs"
    __table_args__ = (
        UniqueConstraint("store_id", "code", name="uq_programs_store_code"),
        # One default program per store: the one a card issued without a programId takes.
        Index(
            "uq_programs_store_default",
            "store_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        CheckConstraint(
            "expiry_kind IN ('NONE', 'AFTER_ISSUE', 'AFTER_ACTIVITY')", name="ck_programs_expiry_kind"
        ),
        CheckConstraint("(expiry_kind = 'NONE') = (expiry_days IS NULL)", name="ck_programs_expiry_days"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    store_id: str = Field(
        sa_column=Column(String(64), ForeignKey("stores.id", name="fk_programs_store_id"), nullable=False)
    )
    code: str = Field(sa_column=Column(String(16), nullable=False))
    name: str = Field(sa_column=Column(String(128), nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    code_prefix: str = Field(sa_column=Column(String(16), nullable=False))
    code_length: int = Field(sa_column=Column(Integer, nullable=False))  # prefix and check included
    code_check_character: bool = Field(sa_column=Column(Boolean, nullable=False))
    denominations: str | None = Field(default=None, sa_column=Column(String(1000)))
    min_value: int | None = Field(default=None, sa_column=Column(BigInteger))
    max_value: int | None = Field(default=None, sa_column=Column(BigInteger))
    value_changes_allowed: bool = Field(sa_column=Column(Boolean, nullable=False))
    expiry_kind: str = Field(sa_column=Column(String(16), nullable=False))
    expiry_days: int | None = Field(default=None, sa_column=Column(Integer))
    max_balance: int | None = Field(default=None, sa_column=Column(BigInteger))
    max_daily_load: int | None = Field(default=None, sa_column=Column(BigInteger))
    is_default: bool = Field(sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
