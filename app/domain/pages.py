"""Pages of a listing, shared by the card listing, the transaction history and the audit trail.

Pages follow item ids upwards (keyset pagination): a cursor names the last item seen, so items added
meanwhile only ever appear further on. Cursors are opaque to clients and carry the listing's prefix,
so one listing refuses another's; the page size is checked, never clamped.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
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
    has_previous_page: bool  # asked for behind a cursor: pages only go forward

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


def decode_cursor(cursor: str, prefix: str) -> int:
    """The id behind an ``after`` cursor of this listing (``prefix``); anything else is refused."""
    refused = BadUserInputError("after: not a cursor of this listing", field="after")
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


def page_size(first: int | None, what: str, default: int = DEFAULT_PAGE_SIZE) -> int:
    """The checked page size (never clamped): ``first``, or ``default`` when it is left out."""
    limit = default if first is None else first
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadUserInputError(f"first: give 1 to {MAX_PAGE_SIZE} {what} per page", field="first")
    return limit


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
