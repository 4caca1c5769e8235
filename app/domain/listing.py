"""List and filter cards page by page (ListGiftCards), codes masked exactly as lookups mask them.

Pages follow card ids upwards (keyset pagination): a cursor names the last card seen, so cards
added meanwhile only ever appear further on. Cursors are opaque to clients; the page size is
checked, never clamped. The transaction history pages the same way with these helpers.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from app.domain.codes import CodeVault
from app.domain.identifiers import MAX_CARD_ID, validate_member_id
from app.domain.masking import CodeMasking
from app.domain.times import to_utc
from app.domain.views import CardEdge, CardPage
from app.enums import CardState, CodeType
from app.errors import BadUserInputError
from app.policy import Permission, Policy, Principal
from app.store.listing import CardCriteria, CardLister

DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 100

CARD_CURSOR = "gc:"  # cursor prefix of this listing; other listings use their own
_CURSOR_ID = re.compile(r"[1-9][0-9]{0,17}")
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(frozen=True)
class CardFilter:
    """What to list; None leaves a condition out. DEACTIVATED cards need asking for."""

    state: CardState | None = None
    member_id: str | None = None
    code_type: CodeType | None = None  # has a live (non-revoked) code of this type
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    include_deactivated: bool = False


def encode_cursor(item_id: int, prefix: str = CARD_CURSOR) -> str:
    """An opaque cursor naming ``item_id`` in the listing that ``prefix`` stands for."""
    return base64.urlsafe_b64encode(f"{prefix}{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "after", prefix: str = CARD_CURSOR) -> int:
    """The id behind a cursor of :func:`encode_cursor` with this prefix; anything else is refused."""
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
    # Ids are 32-bit on every database; one spelling per cursor.
    if item_id > MAX_CARD_ID or encode_cursor(item_id, prefix) != cursor:
        raise refused
    return item_id


def page_size(first: int | None, what: str = "cards", default: int = DEFAULT_PAGE_SIZE) -> int:
    """The checked page size (never clamped): ``first``, or ``default`` when it is left out."""
    limit = default if first is None else first
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadUserInputError(f"first: give 1 to {MAX_PAGE_SIZE} {what} per page", field="first")
    return limit


def created_range(
    created_after: datetime | None,
    created_before: datetime | None,
    names: tuple[str, str] = ("createdAfter", "createdBefore"),
) -> tuple[datetime | None, datetime | None]:
    """A ``createdAfter`` (inclusive) / ``createdBefore`` (exclusive) pair in UTC, checked; errors
    name the fields ``names`` gives."""
    after_name, before_name = names
    created_from = to_utc(created_after, after_name)
    created_until = to_utc(created_before, before_name)
    if created_from is not None and created_until is not None and created_until <= created_from:
        raise BadUserInputError(f"{before_name}: must be later than {after_name}", field=before_name)
    return created_from, created_until


def list_cards(
    lister: CardLister,
    vault: CodeVault,
    policy: Policy,
    principal: Principal,
    *,
    first: int | None = None,
    after: str | None = None,
    card_filter: CardFilter | None = None,
) -> CardPage:
    principal.require(Permission.LIST_GIFT_CARDS)
    limit = page_size(first)
    after_id = None if after is None else decode_cursor(after)
    criteria = _criteria(card_filter or CardFilter(), after_id, policy, principal)

    found = lister.list_cards(criteria, limit)
    shown = CodeMasking(vault, policy).show(principal, found.cards)
    return CardPage(
        edges=tuple(CardEdge(encode_cursor(card.id), card) for card in shown.cards),
        has_next_page=found.more,
        # Pages only go forward: a page asked for behind a cursor has cards before it.
        has_previous_page=after is not None,
        limited_by_permission=shown.limited_by_permission,
    )


def _criteria(
    card_filter: CardFilter, after_id: int | None, policy: Policy, principal: Principal
) -> CardCriteria:
    member_id = None if card_filter.member_id is None else validate_member_id(card_filter.member_id)
    code_type = card_filter.code_type
    if code_type is not None:
        # As with lookups: filtering by a type would tell which cards hold codes the caller
        # may not see.
        policy.require_code_type(principal, code_type)
    created_from, created_before = created_range(card_filter.created_after, card_filter.created_before)
    explicitly_deactivated = card_filter.state is CardState.DEACTIVATED
    return CardCriteria(
        after_id=after_id,
        state=None if card_filter.state is None else card_filter.state.value,
        excluded_states=(
            ()
            if card_filter.include_deactivated or explicitly_deactivated
            else (CardState.DEACTIVATED.value,)
        ),
        member_id=member_id,
        live_code_type=None if code_type is None else code_type.value,
        created_from=created_from,
        created_before=created_before,
    )
