"""The card listing: a filter becomes the lister's criteria (DEACTIVATED cards left out unless
asked for, code types as the policy allows), pages and masking (stand-in lister, no database)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.config import Settings
from app.domain.codes import CodeVault
from app.domain.listing import CARD_CURSOR, NEWEST_FIRST_CURSOR, CardFilter, Listing
from app.domain.masking import CodeMasking
from app.domain.pages import decode_cursor, encode_cursor
from app.entities import Card, StoredCode
from app.enums import CardState, CodeType, GiftCardOrder
from app.errors import BadUserInputError, ForbiddenError, UnauthenticatedError
from app.policy import ANONYMOUS, Principal
from app.policy_file import load_policy
from app.store.listing import CardCriteria, CardSlice
from tests.conftest import ROOT

KEY = base64.b64encode(b"c" * 32).decode()
VAULT = CodeVault.from_settings(Settings(code_lookup_key=KEY, code_encryption_keys=f"k1:{KEY}"))
POLICY = load_policy(ROOT / "permissions.yaml")
NOW = datetime(2026, 12, 1, tzinfo=UTC)
LISTER = Principal(
    "office", frozenset({"ListGiftCards", "UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes"})
)


@dataclass
class Lister:
    """Stands in for the CardLister: a fixed slice, and the criteria it was asked with."""

    cards: list[Card[StoredCode]] = field(default_factory=list)
    more: bool = False
    behind: bool = False
    holders: list[tuple[int, str]] = field(default_factory=list)  # what a code filter finds
    asked: list[tuple[CardCriteria, int]] = field(default_factory=list)
    asked_holders: list[tuple[tuple[bytes, ...], tuple[str, ...], object]] = field(default_factory=list)

    def list_cards(self, criteria, limit):
        self.asked.append((criteria, limit))
        return CardSlice(list(self.cards), self.more, self.behind)

    def code_holders(self, lookup_hashes, code_types, stores):
        self.asked_holders.append((lookup_hashes, code_types, stores))
        return list(self.holders)


def _card(card_id: int, *codes: tuple[CodeType, str]) -> Card[StoredCode]:
    stored = []
    for number, (code_type, code) in enumerate(codes, start=card_id * 10):
        sealed = VAULT.seal(code, code_type)
        stored.append(StoredCode(number, code_type, sealed.ciphertext, sealed.key_id, sealed.last4, None))
    return Card(
        card_id, None, "EUR", CardState.ACTIVE, 0, NOW, NOW, None, None, None, None, None, None, tuple(stored)
    )


def _listing(lister: Lister) -> Listing:
    return Listing(lister, CodeMasking(VAULT, POLICY), POLICY, VAULT)  # type: ignore[arg-type]


def _criteria(card_filter: CardFilter, principal: Principal = LISTER) -> CardCriteria:
    lister = Lister()
    _listing(lister).list(principal, card_filter=card_filter)
    ((criteria, _),) = lister.asked
    return criteria


def _refusal(card_filter: CardFilter, principal: Principal = LISTER, error=BadUserInputError):
    lister = Lister()
    with pytest.raises(error) as caught:
        _listing(lister).list(principal, card_filter=card_filter)
    assert lister.asked == []
    return caught.value.message, caught.value.field


# --- the filter --------------------------------------------------------------------------------


def test_without_a_filter_every_card_but_the_deactivated_ones_is_listed():
    assert _criteria(CardFilter()) == CardCriteria(stores=("default",), excluded_states=("DEACTIVATED",))


def test_deactivated_cards_are_listed_when_asked_for():
    assert _criteria(CardFilter(include_deactivated=True)) == CardCriteria(stores=("default",))


def test_asking_for_the_deactivated_state_lists_deactivated_cards():
    assert _criteria(CardFilter(state=CardState.DEACTIVATED)) == CardCriteria(
        stores=("default",), state="DEACTIVATED"
    )


@pytest.mark.parametrize("state", [CardState.PENDING, CardState.ACTIVE, CardState.BLOCKED])
def test_another_state_still_leaves_deactivated_cards_out(state):
    assert _criteria(CardFilter(state=state)) == CardCriteria(
        stores=("default",), state=state.value, excluded_states=("DEACTIVATED",)
    )


def test_a_full_filter_becomes_the_criteria():
    criteria = _criteria(
        CardFilter(
            state=CardState.ACTIVE,
            member_id="member@shop",
            code_type=CodeType.PERSONAL,
            created_after=datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
            created_before=datetime(2026, 2, 1, tzinfo=UTC),
            include_deactivated=True,
        )
    )
    assert criteria == CardCriteria(
        stores=("default",),
        state="ACTIVE",
        member_id="member@shop",
        live_code_types=("PERSONAL",),
        created_from=datetime(2026, 1, 1, tzinfo=UTC),
        created_before=datetime(2026, 2, 1, tzinfo=UTC),
    )
    assert criteria.created_from is not None and criteria.created_from.tzinfo is UTC


@pytest.mark.parametrize(
    ("principal", "stores"),
    [
        (Principal("office", LISTER.permissions, stores=frozenset({"north", "east"})), ("east", "north")),
        (Principal("office", LISTER.permissions, stores=frozenset()), ()),
        (Principal("office", LISTER.permissions | {"AllStores"}), None),
    ],
    ids=["two stores", "no store", "every store"],
)
def test_cards_are_listed_in_the_callers_stores(principal, stores):
    assert _criteria(CardFilter(), principal).stores == stores


@pytest.mark.parametrize(
    ("code_type", "permission"),
    [
        (CodeType.EXTERNAL, "UseExternalGiftCardCodes"),
        (CodeType.SHORT_PERSONAL, "UseShortPersonalGiftCardCodes"),
    ],
)
def test_filtering_by_a_code_type_needs_its_use_permission(code_type, permission):
    assert _refusal(CardFilter(code_type=code_type), error=ForbiddenError) == (
        f"the token lacks the {permission} permission for {code_type.value} codes",
        "code_type",
    )


def test_a_code_type_seen_only_masked_may_be_filtered_by():
    # Seeing PERSONAL codes masked is enough: the listing shows such cards anyway.
    assert _criteria(CardFilter(code_type=CodeType.PERSONAL)).live_code_types == ("PERSONAL",)


@pytest.mark.parametrize(
    ("card_filter", "message", "field"),
    [
        (CardFilter(member_id=""), "member_id: 1 to 64 letters, digits or . _ : @ -", "member_id"),
        (CardFilter(member_id="m" * 65), "member_id: 1 to 64 letters, digits or . _ : @ -", "member_id"),
        (
            CardFilter(created_after=NOW, created_before=NOW),
            "created_before: must be later than created_after",
            "created_before",
        ),
        (
            CardFilter(created_before=datetime(2026, 1, 1)),
            "created_before: give a time zone (e.g. 2027-01-01T00:00:00Z)",
            "created_before",
        ),
    ],
)
def test_a_malformed_filter_is_refused(card_filter, message, field):
    assert _refusal(card_filter) == (message, field)


# --- pages -------------------------------------------------------------------------------------


def test_listing_needs_list_gift_cards():
    finder = Principal("shop", frozenset({"FindGiftCardByCode", "UsePhysicalGiftCardCodes"}))
    assert _refusal(CardFilter(), finder, ForbiddenError) == (
        "the token lacks the ListGiftCards permission",
        None,
    )
    with pytest.raises(UnauthenticatedError):
        _listing(Lister()).list(ANONYMOUS)


def test_a_page_continues_behind_its_cursor_with_card_cursors():
    lister = Lister([_card(4), _card(9)], more=True, behind=True)

    page = _listing(lister).list(LISTER, first=2, after=encode_cursor(3, CARD_CURSOR))

    ((criteria, limit),) = lister.asked
    assert (criteria.after_id, limit) == (3, 2)
    assert [edge.node.id for edge in page.edges] == [4, 9]
    assert [decode_cursor(edge.cursor, "gc:") for edge in page.edges] == [4, 9]
    assert (page.has_next_page, page.has_previous_page) == (True, True)


def test_the_first_page_takes_thirty_and_has_nothing_before_it():
    lister = Lister()
    page = _listing(lister).list(LISTER)
    ((criteria, limit),) = lister.asked
    assert (criteria.after_id, limit, page.has_next_page, page.has_previous_page) == (None, 30, False, False)


def test_a_cursor_of_another_listing_is_refused():
    with pytest.raises(BadUserInputError) as caught:
        _listing(Lister()).list(LISTER, after=encode_cursor(3, "gt:"))
    assert (caught.value.message, caught.value.field) == ("after: not a cursor of this listing", "after")


@pytest.mark.parametrize("first", [0, 101])
def test_the_page_size_is_checked(first):
    with pytest.raises(BadUserInputError) as caught:
        _listing(Lister()).list(LISTER, first=first)
    assert (caught.value.message, caught.value.field) == ("first: give 1 to 100 cards per page", "first")


def test_codes_are_masked_as_lookups_mask_them():
    lister = Lister([_card(1, (CodeType.PHYSICAL, "PHYS12345678"), (CodeType.PERSONAL, "PERS87654321"))])

    page = _listing(lister).list(LISTER)

    assert page.limited_by_permission is True
    physical, personal = page.edges[0].node.codes
    assert (physical.code, physical.is_masked) == ("PHYS12345678", False)
    assert (personal.code, personal.is_masked) == ("********4321", True)


def test_nothing_is_limited_when_every_code_is_shown_in_full():
    lister = Lister([_card(1, (CodeType.PHYSICAL, "PHYS12345678"))])
    assert _listing(lister).list(LISTER).limited_by_permission is False


# --- both ways, both orders ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "paging", "descending"),
    [
        (GiftCardOrder.CREATED_ASC, {"first": 2, "after": "gc:"}, False),
        (GiftCardOrder.CREATED_ASC, {"last": 2, "before": "gc:"}, True),
        (GiftCardOrder.CREATED_DESC, {"first": 2, "after": "gcd:"}, True),
        (GiftCardOrder.CREATED_DESC, {"last": 2, "before": "gcd:"}, False),
    ],
    ids=[
        "oldest first, forward",
        "oldest first, backward",
        "newest first, forward",
        "newest first, backward",
    ],
)
def test_the_lister_reads_in_the_order_and_direction_asked_for(order, paging, descending):
    cursor_name = "after" if "after" in paging else "before"
    paging = {**paging, cursor_name: encode_cursor(5, paging[cursor_name])}
    lister = Lister([_card(9), _card(7)], more=True, behind=False)

    page = _listing(lister).list(LISTER, order=order, **paging)

    ((criteria, limit),) = lister.asked
    assert (criteria.after_id, criteria.descending, limit) == (5, descending, 2)
    prefix = CARD_CURSOR if order is GiftCardOrder.CREATED_ASC else NEWEST_FIRST_CURSOR
    backward = "last" in paging
    # read backward, the page is turned round into the listing's order and its flags swap
    assert [edge.node.id for edge in page.edges] == ([7, 9] if backward else [9, 7])
    assert [decode_cursor(edge.cursor, prefix) for edge in page.edges] == ([7, 9] if backward else [9, 7])
    assert (page.has_next_page, page.has_previous_page) == ((False, True) if backward else (True, False))


def test_a_cursor_of_the_other_order_is_refused():
    with pytest.raises(BadUserInputError) as caught:
        _listing(Lister()).list(
            LISTER, order=GiftCardOrder.CREATED_DESC, before=encode_cursor(3, CARD_CURSOR)
        )
    assert (caught.value.message, caught.value.field) == ("before: not a cursor of this listing", "before")


# --- code and hasPhysicalCode ------------------------------------------------------------------


def test_a_code_filter_lists_the_cards_holding_the_code():
    lister = Lister([_card(4)], holders=[(8, "PHYSICAL"), (4, "PHYSICAL")])

    _listing(lister).list(LISTER, card_filter=CardFilter(code="phys-1234-5678"))

    # the code is looked for by its hashes under the types the caller may use, in its stores
    ((hashes, code_types, stores),) = lister.asked_holders
    assert hashes == VAULT.lookup_hashes("PHYS12345678")
    assert code_types == ("PHYSICAL", "PERSONAL")  # LISTER's Use… permissions
    assert stores == ("default",)
    ((criteria, _),) = lister.asked
    assert criteria.card_ids == (4, 8)


def test_a_typed_code_filter_looks_under_its_type_only():
    lister = Lister(holders=[(4, "PHYSICAL")])
    _listing(lister).list(LISTER, card_filter=CardFilter(code="PHYS12345678", code_type=CodeType.PHYSICAL))
    ((_, code_types, _),) = lister.asked_holders
    assert code_types == ("PHYSICAL",)
    ((criteria, _),) = lister.asked
    assert (criteria.card_ids, criteria.live_code_types) == ((4,), ("PHYSICAL",))


def test_an_unknown_code_is_an_empty_page_without_a_listing():
    lister = Lister([_card(4)], more=True, behind=True)
    page = _listing(lister).list(LISTER, card_filter=CardFilter(code="NONE12345678"))
    assert (page.edges, page.has_next_page, page.has_previous_page) == ((), False, False)
    assert lister.asked == []


def test_a_code_under_two_types_needs_code_type():
    lister = Lister(holders=[(4, "PHYSICAL"), (5, "PERSONAL")])
    with pytest.raises(BadUserInputError) as caught:
        _listing(lister).list(LISTER, card_filter=CardFilter(code="SAME12345678"))
    assert caught.value.field == "code_type"
    assert lister.asked == []


@pytest.mark.parametrize(
    ("card_filter", "principal", "field"),
    [
        (CardFilter(code="EXTN12345678", code_type=CodeType.EXTERNAL), LISTER, "code_type"),
        (CardFilter(code="EXTN12345678"), Principal("office", frozenset({"ListGiftCards"})), "code"),
        (
            CardFilter(has_physical_code=False),
            Principal("office", frozenset({"ListGiftCards", "UseExternalGiftCardCodes"})),
            "has_physical_code",
        ),
    ],
    ids=["typed", "untyped, no type usable", "hasPhysicalCode"],
)
def test_code_filters_need_the_use_permission(card_filter, principal, field):
    lister = Lister(holders=[(4, "EXTERNAL")])
    with pytest.raises(ForbiddenError) as caught:
        _listing(lister).list(principal, card_filter=card_filter)
    assert caught.value.field == field
    assert (lister.asked, lister.asked_holders) == ([], [])


@pytest.mark.parametrize(
    ("card_filter", "live", "lacking"),
    [
        (CardFilter(has_physical_code=True), ("PHYSICAL",), ()),
        (CardFilter(has_physical_code=False), (), ("PHYSICAL",)),
        (CardFilter(has_physical_code=True, code_type=CodeType.PHYSICAL), ("PHYSICAL",), ()),
        (CardFilter(has_physical_code=True, code_type=CodeType.PERSONAL), ("PERSONAL", "PHYSICAL"), ()),
        (CardFilter(has_physical_code=False, code_type=CodeType.PERSONAL), ("PERSONAL",), ("PHYSICAL",)),
    ],
)
def test_has_physical_code_is_a_live_physical_code_or_its_absence(card_filter, live, lacking):
    criteria = _criteria(card_filter)
    assert (criteria.live_code_types, criteria.no_live_code_types) == (live, lacking)
