"""What the domain hands to the API layer: plain, immutable views of cards and their codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from app.enums import CardState, CodeType


@dataclass(frozen=True, slots=True)
class CodeView:
    id: int
    code_type: CodeType
    code: str  # in full, or masked; never a PIN
    expires_on: date | None
    is_masked: bool


@dataclass(frozen=True, slots=True)
class CardView:
    id: int
    member_id: str | None
    currency: str
    state: CardState
    balance: int  # minor units
    created_at: datetime
    updated_at: datetime
    codes: tuple[CodeView, ...]
    created_by: str | None = None
    usable_from: datetime | None = None
    expires_at: datetime | None = None
    note: str | None = None
    source_id: str | None = None
    ref_no: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    limited_by_permission: bool
    cards: tuple[CardView, ...]
