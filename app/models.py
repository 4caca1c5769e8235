"""Database tables (SQLModel). Money is integer minor units; codes are never stored in plain text.

A code row keeps a keyed HMAC of the code (its lookup), its AEAD ciphertext and last four characters,
with the ids of their keys so that keys rotate. Revoked rows keep their hash and ``(lookup_hash,
code_type)`` is unique, so a revoked code can never be given to another card.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from app.ids import new_id
from app.stores import DEFAULT_STORE

# Ids are 64-bit (app/ids.py): BIGINT on PostgreSQL; on SQLite an INTEGER PRIMARY KEY, which is
# already 64-bit and stays the rowid (a BIGINT key would not be).
ID = BigInteger().with_variant(Integer(), "sqlite")


def _store_column() -> Any:
    """The store a row belongs to (DESIGN §11): rows from before stores are the default store's."""
    return Field(
        default=DEFAULT_STORE, sa_column=Column(String(64), nullable=False, server_default=DEFAULT_STORE)
    )


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, written in UTC and read back aware, though SQLite keeps no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value  # type: ignore[no-any-return]
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class Store(SQLModel, table=True):
    """A merchant or brand with cards of its own; never deleted (its cards name it)."""

    __tablename__ = "stores"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str | None = Field(default=None, sa_column=Column(String(128)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class GiftCard(SQLModel, table=True):
    __tablename__ = "giftcards"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_giftcards_balance_nonnegative"),
        CheckConstraint(
            "state IN ('PENDING', 'ACTIVE', 'BLOCKED', 'DEACTIVATED')", name="ck_giftcards_state"
        ),
        CheckConstraint("initial_value > 0", name="ck_giftcards_initial_value_positive"),
        CheckConstraint("loaded_today >= 0", name="ck_giftcards_loaded_today_nonnegative"),
        Index("ix_giftcards_program_id", "program_id"),  # does a program have cards (frozen fields)
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    store_id: str = _store_column()
    member_id: str | None = Field(default=None, sa_column=Column(String(64), index=True))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    balance: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_by: str | None = Field(default=None, sa_column=Column(String(128)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_by: str | None = Field(default=None, sa_column=Column(String(128)))  # subject of the last change
    location_id: str | None = Field(default=None, sa_column=Column(String(64)))  # where it was issued
    # The card's own validity window (per-code expiry is on the code).
    usable_from: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    note: str | None = Field(default=None, sa_column=Column(String(1000)))  # internal
    source_id: str | None = Field(default=None, sa_column=Column(String(128)))
    ref_no: str | None = Field(default=None, sa_column=Column(String(128)))
    # The value the card was issued with (minor units; its first ADD); None: issued empty.
    initial_value: int | None = Field(default=None, sa_column=Column(BigInteger))
    # The program whose rules the card follows; None: issued before programs, or with none.
    # (no foreign key: programs are never deleted, and app/program_models.py imports this module)
    program_id: int | None = Field(default=None, sa_column=Column(ID))
    # Loaded on ``loaded_day`` (a UTC date), for the program's daily limit: both are set by the
    # statement that moves the money, so no two loads can pass the limit together.
    loaded_day: date | None = Field(default=None, sa_column=Column(Date))
    loaded_today: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class GiftCardCode(SQLModel, table=True):
    __tablename__ = "giftcard_codes"
    __table_args__ = (
        # Codes are unique within (store, code type): the same code may be in two stores.
        UniqueConstraint("lookup_hash", "code_type", "store_id", name="uq_giftcard_codes_lookup"),
        CheckConstraint(
            "code_type IN ('PHYSICAL', 'PERSONAL', 'EXTERNAL', 'SHORT_PERSONAL')",
            name="ck_giftcard_codes_type",
        ),
        Index("ix_giftcard_codes_giftcard_id", "giftcard_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    giftcard_id: int | None = Field(  # set when the card is flushed
        default=None, sa_column=Column(ID, ForeignKey("giftcards.id"), nullable=False)
    )
    store_id: str = _store_column()  # the card's, kept here for the unique constraint
    code_type: str = Field(sa_column=Column(String(16), nullable=False))
    lookup_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    lookup_key_id: str = Field(sa_column=Column(String(32), nullable=False))  # the HMAC key's id
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_id: str = Field(sa_column=Column(String(32), nullable=False))
    last4: str = Field(sa_column=Column(String(4), nullable=False))
    # The PIN's keyed value (base64 HMAC-SHA256) and its key ids; an argon2 hash when no ids.
    pin_hash: str | None = Field(default=None, sa_column=Column(String(255)))
    pin_key_ids: str | None = Field(default=None, sa_column=Column(String(255)))
    expires_on: date | None = Field(default=None, sa_column=Column(Date))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # PIN lockout: wrong PINs in a row, and until when the code refuses every PIN after too many.
    failed_pin_attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    pin_locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class LedgerEntry(SQLModel, table=True):
    """One balance change; a card's balance is the sum of its COMPLETED entries."""

    __tablename__ = "giftcard_transactions"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="ck_giftcard_transactions_amount_nonzero"),
        CheckConstraint("balance_after >= 0", name="ck_giftcard_transactions_balance_after"),
        Index("ix_giftcard_transactions_giftcard_id", "giftcard_id", "id"),
        CheckConstraint(
            "status IN ('AUTHORIZED', 'COMPLETED', 'CANCELLED')", name="ck_giftcard_transactions_status"
        ),
        Index("ix_giftcard_transactions_open_holds", "giftcard_id", "status"),
        Index("uq_giftcard_transactions_auth_code_hash", "auth_code_hash", unique=True),
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    giftcard_id: int = Field(sa_column=Column(ID, ForeignKey("giftcards.id"), nullable=False))
    store_id: str = _store_column()  # the card's
    trans_type: str = Field(sa_column=Column(String(16), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    balance_before: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    balance_after: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Authorize-then-capture: the amount first authorized, when the hold lapses, and when it ended.
    authorized_amount: int | None = Field(default=None, sa_column=Column(BigInteger))
    hold_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    settled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    partial: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    auth_code_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32)))  # SHA-256
    code_type: str | None = Field(default=None, sa_column=Column(String(16)))  # how it was addressed
    code_id: int | None = Field(
        default=None,
        sa_column=Column(ID, ForeignKey("giftcard_codes.id", name="fk_giftcard_transactions_code_id")),
    )
    source_id: str | None = Field(default=None, sa_column=Column(String(128)))
    ref_no: str | None = Field(default=None, sa_column=Column(String(128)))
    # Where it happened: the caller's own name for a store or till (Square's location_id), free text.
    location_id: str | None = Field(default=None, sa_column=Column(String(64)))
    note: str | None = Field(default=None, sa_column=Column(String(1000)))
    created_by: str | None = Field(default=None, sa_column=Column(String(128)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class GiftCardEvent(SQLModel, table=True):
    """Append-only history of a card: state changes, codes added and revoked, member changes."""

    __tablename__ = "giftcard_events"
    __table_args__ = (Index("ix_giftcard_events_giftcard_id", "giftcard_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    giftcard_id: int = Field(sa_column=Column(ID, ForeignKey("giftcards.id"), nullable=False))
    store_id: str = _store_column()  # the card's
    event: str = Field(sa_column=Column(String(32), nullable=False))
    detail: str | None = Field(default=None, sa_column=Column(String(255)))  # never a code
    actor: str | None = Field(default=None, sa_column=Column(String(128)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class IdempotencyKey(SQLModel, table=True):
    """The first response to a keyed mutation, per token subject and stores; encrypted (it can hold a
    new code)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    # The caller's stores (Principal.store_key): a key used for one store never answers another.
    store_key: str = Field(
        default=DEFAULT_STORE,
        sa_column=Column(String(64), primary_key=True, server_default=DEFAULT_STORE),
    )
    subject: str = Field(sa_column=Column(String(128), primary_key=True))
    key: str = Field(sa_column=Column(String(128), primary_key=True))
    operation: str = Field(sa_column=Column(String(64), nullable=False))
    request_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    # The lookup key that digested the request (None: written before the column existed).
    request_key_id: str | None = Field(default=None, sa_column=Column(String(32)))
    response: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_id: str = Field(sa_column=Column(String(32), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class CodeReservation(SQLModel, table=True):
    """A batch of PHYSICAL codes set aside for printing, owned by the token subject that asked."""

    __tablename__ = "code_reservations"
    __table_args__ = (Index("ix_code_reservations_request_name", "request_name", "id"),)

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    store_id: str = _store_column()  # its codes are unique within this store
    request_name: str = Field(sa_column=Column(String(128), nullable=False))
    agency: str = Field(sa_column=Column(String(128), nullable=False))
    owner: str = Field(sa_column=Column(String(128), nullable=False))
    single: bool = Field(sa_column=Column(Boolean, nullable=False))
    count: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ReservedCode(SQLModel, table=True):
    """One reserved code, sealed like a card's code; ``used_at`` is set when a card takes it."""

    __tablename__ = "reserved_codes"
    __table_args__ = (
        UniqueConstraint("lookup_hash", "store_id", name="uq_reserved_codes_lookup"),
        Index("ix_reserved_codes_reservation_id", "reservation_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    reservation_id: int = Field(sa_column=Column(ID, ForeignKey("code_reservations.id"), nullable=False))
    store_id: str = _store_column()  # its reservation's
    lookup_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    lookup_key_id: str = Field(sa_column=Column(String(32), nullable=False))  # the HMAC key's id
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_id: str = Field(sa_column=Column(String(32), nullable=False))
    last4: str = Field(sa_column=Column(String(4), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class AuditEvent(SQLModel, table=True):
    """Append-only record of every mutation and every disclosure of a code in full; never a code, a PIN
    or a secret. Triggers refuse updates and deletes. A refusal row stands for ``count`` refusals of
    one subject, operation and outcome in one minute."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_giftcard_id", "giftcard_id", "id"),
        Index("ix_audit_events_subject", "subject", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID, primary_key=True, default=new_id))
    # The card's store, else the caller's when it acts on one store; None: no one store (AllStores).
    store_id: str | None = Field(
        default=None,
        sa_column=Column(String(64), server_default=DEFAULT_STORE),  # rows from before stores
    )
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    action: str = Field(sa_column=Column(String(64), nullable=False))  # e.g. giftcardAdd, CODE_DISCLOSED
    outcome: str = Field(sa_column=Column(String(32), nullable=False))  # OK or the error code
    subject: str | None = Field(default=None, sa_column=Column(String(128)))
    giftcard_id: int | None = Field(default=None, sa_column=Column(ID))  # no FK: may name no card
    field: str | None = Field(default=None, sa_column=Column(String(64)))  # e.g. PHYSICAL code
    request_id: str | None = Field(default=None, sa_column=Column(String(64)))
    client_address: str | None = Field(default=None, sa_column=Column(String(64)))
    count: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))


class IdNode(SQLModel, table=True):
    """A node number claimed by a starting server process (app.db.claim_id_node): its id modulo
    app.ids.NODES goes into the ids that process hands out. Numbered by the database, not by new_id."""

    __tablename__ = "id_nodes"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    claimed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
