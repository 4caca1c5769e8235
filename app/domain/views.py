"""What the domain hands to the API layer: plain, immutable views of cards and their codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.entities import Card, ShownCode

# A card as the caller may see it: what lookups, listings and card mutations answer.
ShownCard = Card[ShownCode]


@dataclass(frozen=True, slots=True)
class SearchResult:
    limited_by_permission: bool
    cards: tuple[ShownCard, ...]


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
    card: ShownCard


@dataclass(frozen=True, slots=True)
class CardPage(PageCursors):
    """One page of a card listing, in id order."""

    edges: tuple[CardEdge, ...]
    has_next_page: bool
    has_previous_page: bool
    limited_by_permission: bool
