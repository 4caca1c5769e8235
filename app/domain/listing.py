"""List and filter cards page by page (ListGiftCards), codes masked exactly as lookups mask them;
pages follow card ids upwards (see :mod:`app.domain.pages`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain.identifiers import validate_member_id
from app.domain.masking import CodeMasking, ShownCard
from app.domain.pages import Page, created_range, decode_cursor, edges, page_size
from app.domain.scoping import narrow
from app.enums import CardState, CodeType
from app.policy import Permission, Policy, Principal
from app.store.listing import CardCriteria, CardLister

CARD_CURSOR = "gc:"  # cursor prefix of this listing; other listings use their own


@dataclass(frozen=True)
class CardFilter:
    """What to list; None leaves a condition out. DEACTIVATED cards need asking for."""

    state: CardState | None = None
    member_id: str | None = None
    code_type: CodeType | None = None  # has a live (non-revoked) code of this type
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    include_deactivated: bool = False
    store_id: str | None = None  # only this one of the caller's stores


@dataclass(frozen=True)
class CardPage(Page[ShownCard]):
    """One page of the card listing, in id order."""

    limited_by_permission: bool


class Listing:
    def __init__(self, lister: CardLister, masking: CodeMasking, policy: Policy) -> None:
        self._lister = lister
        self._masking = masking
        self._policy = policy

    def list(
        self,
        principal: Principal,
        *,
        first: int | None = None,
        after: str | None = None,
        card_filter: CardFilter | None = None,
    ) -> CardPage:
        principal.require(Permission.LIST_GIFT_CARDS)
        card_filter = card_filter or CardFilter()
        principal = narrow(principal, card_filter.store_id)
        limit = page_size(first, "cards")
        after_id = None if after is None else decode_cursor(after, CARD_CURSOR)
        criteria = _criteria(card_filter, after_id, self._policy, principal)
        found = self._lister.list_cards(criteria, limit)
        shown = self._masking.show(principal, found.cards)
        return CardPage(
            edges(shown.cards, CARD_CURSOR),
            has_next_page=found.more,
            has_previous_page=after is not None,  # pages only go forward
            limited_by_permission=shown.limited_by_permission,
        )


def _criteria(
    card_filter: CardFilter, after_id: int | None, policy: Policy, principal: Principal
) -> CardCriteria:
    member_id = None if card_filter.member_id is None else validate_member_id(card_filter.member_id)
    code_type = card_filter.code_type
    if code_type is not None:
        # As with lookups: filtering by a type would tell which cards hold codes the caller may not see.
        policy.require_code_type(principal, code_type)
    created_from, created_before = created_range(card_filter.created_after, card_filter.created_before)
    deactivated_too = card_filter.include_deactivated or card_filter.state is CardState.DEACTIVATED
    return CardCriteria(
        stores=principal.store_ids(),
        after_id=after_id,
        state=None if card_filter.state is None else card_filter.state.value,
        excluded_states=() if deactivated_too else (CardState.DEACTIVATED.value,),
        member_id=member_id,
        live_code_type=None if code_type is None else code_type.value,
        created_from=created_from,
        created_before=created_before,
    )
