"""Pages of a listing, shared by the card listing, the transaction history and the audit trail.

Pages follow item ids (keyset pagination): a cursor names the last item seen, so items added
meanwhile only ever appear further on. Cursors are opaque to clients and carry the listing's prefix,
so one listing refuses another's; the page size is checked, never clamped. A listing that pages both
ways takes a :class:`PageRequest`: forward (first/after) or backward (last/before).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from app.domain.identifiers import MAX_CARD_ID
from app.domain.times import to_utc
from app.errors import BadUserInputError

DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 100

_CURSOR_ID = re.compile(r"[1-9][0-9]{0,18}")
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{1,40}")


class _Listed(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=_Listed)


@dataclass(frozen=True)
class Edge(Generic[T]):
    cursor: str  # opaque; pass it as `after` to continue behind this item
    node: T


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, in id order, and the cursors at its two ends."""

    edges: tuple[Edge[T], ...]
    has_next_page: bool
    has_previous_page: bool  # items come before the first edge (forward-only listings: asked behind a cursor)

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None


def edges(items: Iterable[T], prefix: str) -> tuple[Edge[T], ...]:
    """Each item with the cursor (of the listing ``prefix`` stands for) that continues behind it."""
    return tuple(Edge(encode_cursor(item.id, prefix), item) for item in items)


def encode_cursor(item_id: int, prefix: str) -> str:
    """An opaque cursor naming ``item_id`` in the listing that ``prefix`` stands for."""
    return base64.urlsafe_b64encode(f"{prefix}{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str, field: str = "after") -> int:
    """The id behind a cursor of this listing (``prefix``), given as ``field``; anything else is
    refused."""
    refused = BadUserInputError(f"{field}: not a cursor of this listing", field=field)
    if not _CURSOR_TEXT.fullmatch(cursor):
        raise refused
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise refused from None
    if not text.startswith(prefix) or not _CURSOR_ID.fullmatch(text[len(prefix) :]):
        raise refused
    item_id = int(text[len(prefix) :])
    # Ids are 64-bit on every database; one spelling per cursor.
    if item_id > MAX_CARD_ID or encode_cursor(item_id, prefix) != cursor:
        raise refused
    return item_id


def page_size(first: int | None, what: str, default: int = DEFAULT_PAGE_SIZE, field: str = "first") -> int:
    """The checked page size (never clamped): ``first`` (given as ``field``), or ``default`` when it
    is left out."""
    limit = default if first is None else first
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadUserInputError(f"{field}: give 1 to {MAX_PAGE_SIZE} {what} per page", field=field)
    return limit


@dataclass(frozen=True)
class PageRequest:
    """A page asked for in either direction: up to ``limit`` items beyond the cursor's item (from
    the start or end of the listing without one), read in the listing's order (forward) or against
    it (backward)."""

    limit: int
    cursor_id: int | None = None
    backward: bool = False


def page_request(
    first: int | None, after: str | None, last: int | None, before: str | None, what: str, prefix: str
) -> PageRequest:
    """The checked request of a listing that pages both ways: ``first``/``after`` forward,
    ``last``/``before`` backward, never both directions at once."""
    for name, value, other, other_value in (
        ("last", last, "first", first),
        ("before", before, "after", after),
        ("before", before, "first", first),
        ("after", after, "last", last),
    ):
        if value is not None and other_value is not None:
            raise BadUserInputError(
                f"{name}: not together with {other} (first/after page forward, last/before backward)",
                field=name,
            )
    if last is not None or before is not None:
        cursor_id = None if before is None else decode_cursor(before, prefix, "before")
        return PageRequest(page_size(last, what, field="last"), cursor_id, backward=True)
    cursor_id = None if after is None else decode_cursor(after, prefix)
    return PageRequest(page_size(first, what), cursor_id)


def in_listing_order(
    request: PageRequest, read: Sequence[T], more: bool, behind: bool
) -> tuple[tuple[T, ...], bool, bool]:
    """A page ``read`` in the request's direction, put in the listing's order, and (has_next_page,
    has_previous_page): ``more`` items follow the read ones in its direction, items lie ``behind``
    the cursor (at or before its item)."""
    if request.backward:
        return tuple(reversed(read)), behind, more
    return tuple(read), more, behind


def created_range(
    created_after: datetime | None,
    created_before: datetime | None,
    names: tuple[str, str] = ("created_after", "created_before"),
) -> tuple[datetime | None, datetime | None]:
    """An after (inclusive) / before (exclusive) pair in UTC, checked; ``names`` are the fields' names."""
    after_name, before_name = names
    created_from = to_utc(created_after, after_name)
    created_until = to_utc(created_before, before_name)
    if created_from is not None and created_until is not None and created_until <= created_from:
        raise BadUserInputError(f"{before_name}: must be later than {after_name}", field=before_name)
    return created_from, created_until
