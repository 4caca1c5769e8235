"""List and filter cards page by page (ListGiftCards), codes masked exactly as lookups mask them;
pages follow card ids either way, oldest or newest first (see :mod:`app.domain.pages`).

A cursor belongs to its order: each order has its own cursor prefix, so a cursor of one order given
with the other is refused. A code filter finds its cards as the history's code filter does
(:mod:`app.domain.code_filters`); a caller with ListGiftCards may list every card anyway, so it
spends no code attempt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from app.domain.code_filters import code_filter
from app.domain.codes import CodeVault
from app.domain.identifiers import validate_member_id
from app.domain.masking import CodeMasking, ShownCard
from app.domain.pages import Page, created_range, edges, in_listing_order, page_request
from app.domain.scoping import narrow
from app.enums import CardState, CodeType, GiftCardOrder
from app.errors import BadUserInputError, ForbiddenError
from app.policy import Permission, Policy, Principal
from app.store.listing import CardCriteria, CardLister

CARD_CURSOR = "gc:"  # cursor prefix of this listing, oldest first; other listings use their own
NEWEST_FIRST_CURSOR = "gcd:"  # and newest first
_CURSORS = {GiftCardOrder.CREATED_ASC: CARD_CURSOR, GiftCardOrder.CREATED_DESC: NEWEST_FIRST_CURSOR}


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
    code: str | None = None  # the card holding this live code (of code_type, when given)
    has_physical_code: bool | None = None  # has (True) or lacks (False) a live PHYSICAL code


@dataclass(frozen=True)
class CardPage(Page[ShownCard]):
    """One page of the card listing, in the listing's order."""

    limited_by_permission: bool


class Listing:
    def __init__(self, lister: CardLister, masking: CodeMasking, policy: Policy, vault: CodeVault) -> None:
        self._lister = lister
        self._masking = masking
        self._policy = policy
        self._vault = vault

    def list(  # noqa: PLR0913  (the connection's arguments, each by keyword)
        self,
        principal: Principal,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order: GiftCardOrder = GiftCardOrder.CREATED_ASC,
        card_filter: CardFilter | None = None,
    ) -> CardPage:
        principal.require(Permission.LIST_GIFT_CARDS)
        card_filter = card_filter or CardFilter()
        principal = narrow(principal, card_filter.store_id)
        prefix = _CURSORS[order]
        request = page_request(first, after, last, before, "cards", prefix)
        criteria = _criteria(card_filter, self._policy, principal)
        card_ids = self._code_holders(card_filter, principal)
        if card_ids == ():
            return CardPage((), has_next_page=False, has_previous_page=False, limited_by_permission=False)
        criteria = dataclasses.replace(
            criteria,
            after_id=request.cursor_id,
            # Backward reads against the listing's order.
            descending=(order is GiftCardOrder.CREATED_DESC) != request.backward,
            card_ids=card_ids,
        )
        found = self._lister.list_cards(criteria, request.limit)
        shown = self._masking.show(principal, found.cards)
        cards, has_next, has_previous = in_listing_order(request, shown.cards, found.more, found.behind)
        return CardPage(
            edges(cards, prefix),
            has_next_page=has_next,
            has_previous_page=has_previous,
            limited_by_permission=shown.limited_by_permission,
        )

    def _code_holders(self, card_filter: CardFilter, principal: Principal) -> tuple[int, ...] | None:
        """The cards holding the filter's code (None: no code filter)."""
        if card_filter.code is None:
            return None
        found = code_filter(self._vault, self._policy, principal, card_filter.code, card_filter.code_type)
        types = tuple(code_type.value for code_type in found.code_types)
        holders = self._lister.code_holders(found.lookup_hashes, types, principal.store_ids())
        if len({code_type for _, code_type in holders}) > 1:
            raise BadUserInputError(
                "code_type: the code exists under more than one code type; say which", field="code_type"
            )
        return tuple(sorted({card_id for card_id, _ in holders}))


def _criteria(card_filter: CardFilter, policy: Policy, principal: Principal) -> CardCriteria:
    member_id = None if card_filter.member_id is None else validate_member_id(card_filter.member_id)
    live: list[str] = []
    lacking: list[str] = []
    if card_filter.code_type is not None:
        # As with lookups: filtering by a type would tell which cards hold codes the caller may not see.
        policy.require_code_type(principal, card_filter.code_type)
        live.append(card_filter.code_type.value)
    if (has_physical := card_filter.has_physical_code) is not None:
        # As codeType: PHYSICAL, which it agrees with (true) or negates (false).
        if CodeType.PHYSICAL not in policy.usable_code_types(principal):
            needed = policy.code_types[CodeType.PHYSICAL].use
            raise ForbiddenError(
                f"has_physical_code: needs the {needed} permission", field="has_physical_code"
            )
        (live if has_physical else lacking).append(CodeType.PHYSICAL.value)
    created_from, created_before = created_range(card_filter.created_after, card_filter.created_before)
    deactivated_too = card_filter.include_deactivated or card_filter.state is CardState.DEACTIVATED
    return CardCriteria(
        stores=principal.store_ids(),
        state=None if card_filter.state is None else card_filter.state.value,
        excluded_states=() if deactivated_too else (CardState.DEACTIVATED.value,),
        member_id=member_id,
        live_code_types=tuple(dict.fromkeys(live)),
        no_live_code_types=tuple(lacking),
        created_from=created_from,
        created_before=created_before,
    )
