"""What every layer hands around: one frozen dataclass per entity.

The store builds them from rows (in one place per entity), the domain returns them, and the GraphQL
edge maps each onto its API type once. A card's codes are stored sealed (:class:`StoredCode`) and
shown as the caller may see them (:class:`ShownCode`): ``Card[StoredCode]`` leaves the store,
``Card[ShownCode]`` the domain. Stored answers to idempotent mutations are these same shapes,
decoded with pydantic (:func:`decode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import cache
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from app.enums import CardState, CodeType, ExpiryKind, TransStatus, TransType
from app.stores import DEFAULT_STORE

C = TypeVar("C")
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class StoredCode:
    """A live code as stored: encrypted, with its last four characters for masking."""

    id: int
    code_type: CodeType
    ciphertext: bytes
    key_id: str
    last4: str
    expires_on: date | None


@dataclass(frozen=True, slots=True)
class ShownCode:
    """A code as the caller may see it: in full, or masked. Never a PIN."""

    id: int
    code_type: CodeType
    code: str
    expires_on: date | None
    is_masked: bool


@dataclass(frozen=True, slots=True)
class Card(Generic[C]):
    """A gift card and its live codes; every field but ``codes`` is its row's, in order."""

    id: int
    member_id: str | None
    currency: str
    state: CardState
    balance: int  # minor units
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    usable_from: datetime | None
    expires_at: datetime | None
    note: str | None
    source_id: str | None
    ref_no: str | None
    codes: tuple[C, ...]
    # Last, with a default: answers sealed under idempotency keys before it existed lack it.
    initial_value: int | None = None  # minor units the card was issued with; None: issued empty
    store_id: str = DEFAULT_STORE  # the store the card belongs to
    program_id: int | None = None  # the program whose rules it follows; None: none
    updated_by: str | None = None  # the token subject of the last change (None: before it was kept)
    location_id: str | None = None  # where it was issued (None: not given)

    def with_codes(self, codes: tuple[D, ...]) -> Card[D]:
        """The same card with other codes: the masking step's copy, made without introspection."""
        return card_of(tuple(getattr(self, name) for name in CARD_FIELDS), codes)

    @property
    def giftcard_id(self) -> int:
        """The card's id under the name transactions use (the audit trail reads either)."""
        return self.id


# A card's fields but its codes, in order: its row's columns (app.store.cards selects them so).
CARD_FIELDS = tuple(item.name for item in fields(Card) if item.name != "codes")
_CODES_AT = [item.name for item in fields(Card)].index("codes")


def card_of(values: Sequence[Any], codes: tuple[C, ...]) -> Card[C]:
    """The card whose CARD_FIELDS are ``values``, in order, with ``codes``."""
    return Card(*values[:_CODES_AT], codes, *values[_CODES_AT:])  # type: ignore[call-arg]  # the fields, in order


@dataclass(frozen=True, slots=True)
class Transaction:
    """One ledger entry, with its card's currency and balances."""

    id: int
    giftcard_id: int
    trans_type: TransType
    status: TransStatus
    amount: int
    currency: str
    balance: int  # the card's balance when the answer was given (history: after this entry)
    available_balance: int | None  # balance minus open debit holds; None in history rows
    balance_before: int
    balance_after: int
    authorized_amount: int | None
    hold_expires_at: datetime | None
    partial: bool
    source_id: str | None
    ref_no: str | None
    note: str | None
    created_at: datetime
    settled_at: datetime | None
    # Last, with a default: answers sealed under idempotency keys before locations existed lack it.
    location_id: str | None = None
    store_id: str = DEFAULT_STORE  # its card's store
    created_by: str | None = None  # the token subject that made it
    # An authorization's code, in the authorization's answer only (the row keeps its hash).
    auth_code: str | None = None


@dataclass(frozen=True, slots=True)
class Reservation(Generic[C]):
    """A batch of reserved PHYSICAL codes; ``codes`` sealed in the store, shown (in full once,
    masked after) by the domain."""

    id: int
    request_name: str
    agency: str
    single: bool
    count: int
    created_at: datetime
    expires_at: datetime | None
    codes: tuple[C, ...]
    used_count: int  # codes cards have taken
    lapsed: bool = False  # single, expired, and never used: its code is free again
    store_id: str | None = None  # the store its codes are reserved in (None in answers stored before)


@dataclass(frozen=True, slots=True)
class StoredReservedCode:
    ciphertext: bytes
    last4: str
    used: bool


@dataclass(frozen=True, slots=True)
class CodeFormat:
    """How a program's generated codes look: ``prefix``, then random symbols, then a check character
    when ``check_character``; ``length`` counts them all."""

    prefix: str
    length: int
    check_character: bool

    @property
    def random_length(self) -> int:
        return self.length - len(self.prefix) - int(self.check_character)


@dataclass(frozen=True, slots=True)
class Program:
    """A store's rules for its cards (DESIGN §11); amounts in minor units of ``currency``, None
    where the program sets no rule (the server's own ceiling still holds)."""

    id: int
    store_id: str
    code: str  # the store's short name for it, e.g. "GC"
    name: str
    currency: str
    code_format: CodeFormat
    denominations: tuple[int, ...]  # the only values a card may be issued with; empty: any
    min_value: int | None
    max_value: int | None
    value_changes_allowed: bool  # loads after issue
    expiry_kind: ExpiryKind
    expiry_days: int | None  # None exactly when expiry_kind is NONE
    max_balance: int | None
    max_daily_load: int | None  # per card per UTC day
    is_default: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Store:
    """A merchant or brand with cards of its own (DESIGN §11)."""

    id: str
    name: str | None
    created_at: datetime


@cache
def _adapter(shape: Any) -> TypeAdapter[Any]:
    return TypeAdapter(shape)


def decode(shape: Any, data: object) -> Any:
    """``data`` (JSON as ``app.domain.idempotency.encode`` wrote a ``shape``) as a ``shape`` again."""
    return _adapter(shape).validate_python(data)
