"""What the domain hands to the API layer: plain, immutable views of cards and their codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

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

    @property
    def giftcard_id(self) -> int:
        """The card's id under the name transaction views use (the audit trail reads either)."""
        return self.id


@dataclass(frozen=True, slots=True)
class SearchResult:
    limited_by_permission: bool
    cards: tuple[CardView, ...]


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def card_view_from_json(data: dict[str, Any]) -> CardView:
    """The inverse of ``app.domain.idempotency.encode`` for a CardView (stored responses)."""
    codes = tuple(
        CodeView(
            id=code["id"],
            code_type=CodeType(code["code_type"]),
            code=code["code"],
            expires_on=None if code["expires_on"] is None else date.fromisoformat(code["expires_on"]),
            is_masked=code["is_masked"],
        )
        for code in data["codes"]
    )
    created_at, updated_at = _moment(data["created_at"]), _moment(data["updated_at"])
    assert created_at is not None and updated_at is not None
    return CardView(
        id=data["id"],
        member_id=data["member_id"],
        currency=data["currency"],
        state=CardState(data["state"]),
        balance=data["balance"],
        created_at=created_at,
        updated_at=updated_at,
        codes=codes,
        created_by=data["created_by"],
        usable_from=_moment(data["usable_from"]),
        expires_at=_moment(data["expires_at"]),
        note=data["note"],
        source_id=data["source_id"],
        ref_no=data["ref_no"],
    )


class PageCursors:
    """What every page has: edges that each carry a ``cursor``, whether pages follow or precede,
    and the cursors at its two ends."""

    __slots__ = ()
    edges: tuple[Any, ...]
    has_next_page: bool
    has_previous_page: bool

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None


@dataclass(frozen=True, slots=True)
class CardEdge:
    cursor: str  # opaque; pass it as `after` to continue behind this card
    card: CardView


@dataclass(frozen=True, slots=True)
class CardPage(PageCursors):
    """One page of a card listing, in id order."""

    edges: tuple[CardEdge, ...]
    has_next_page: bool
    has_previous_page: bool
    limited_by_permission: bool
