"""The card listing: a filter becomes the lister's criteria (DEACTIVATED cards left out unless
asked for, code types as the policy allows), pages and masking (stand-in lister, no database)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.config import Settings
from app.domain.codes import CodeVault
from app.domain.listing import CARD_CURSOR, CardFilter, Listing
from app.domain.masking import CodeMasking
from app.domain.pages import decode_cursor, encode_cursor
from app.entities import Card, StoredCode
from app.enums import CardState, CodeType
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
