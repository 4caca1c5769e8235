"""Finding cards by code, id or member: what must be given, the permissions each way needs, which
matches count, and which lookups spend an untrusted caller's budget (stand-ins for the card store
and the throttle, no database)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from app.config import Settings
from app.domain.addressing import AMBIGUOUS_STORE
from app.domain.codes import CodeVault
from app.domain.lookup import Lookup
from app.domain.masking import CodeMasking
from app.entities import Card, StoredCode
from app.enums import CardState, CodeType
from app.errors import BadUserInputError, ForbiddenError, UnauthenticatedError
from app.policy import ANONYMOUS, Principal
from app.policy_file import load_policy
from app.store.cards import CodeMatch
from tests.conftest import ROOT
from tests.domain.stand_ins import Throttle

KEY = base64.b64encode(b"f" * 32).decode()
VAULT = CodeVault.from_settings(Settings(code_lookup_key=KEY, code_encryption_keys=f"k1:{KEY}"))
POLICY = load_policy(ROOT / "permissions.yaml")
NOW = datetime(2026, 12, 1, tzinfo=UTC)
CODE = "SHARED123456"

SHOP = Principal(
    "shop",
    frozenset({"FindGiftCardByCode", "UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes"}),
    address="10.0.0.1",
)
OFFICE = Principal("office", SHOP.permissions | {"ListGiftCards", "UseExternalGiftCardCodes"})


def _card(card_id: int, code_type: CodeType = CodeType.PHYSICAL, code: str = CODE) -> Card[StoredCode]:
    sealed = VAULT.seal(code, code_type)
    stored = StoredCode(card_id * 10, code_type, sealed.ciphertext, sealed.key_id, sealed.last4, None)
    return Card(
        card_id, "M1", "EUR", CardState.ACTIVE, 0, NOW, NOW, None, None, None, None, None, None, (stored,)
    )


def _match(
    card_id: int, code_type: CodeType = CodeType.PHYSICAL, expires_on: date | None = None
) -> CodeMatch:
    return CodeMatch(code_type, expires_on, _card(card_id, code_type))


@dataclass
class CardStore:
    """Stands in for the CardStore: fixed matches and cards, and what it was asked."""

    matches: list[CodeMatch] = field(default_factory=list)
    cards: list[Card[StoredCode]] = field(default_factory=list)
    asked: list[tuple[str, object, object]] = field(default_factory=list)  # (by, what, the stores)

    def find_by_code_hash(self, lookup_hashes, stores):
        self.asked.append(("code", lookup_hashes, stores))
        return list(self.matches)

    def find_by_id(self, card_id, stores):
        self.asked.append(("id", card_id, stores))
        return list(self.cards)

    def find_by_member(self, member_id, stores):
        self.asked.append(("member", member_id, stores))
        return list(self.cards)


def _lookup(store: CardStore, throttle: Throttle | None = None) -> Lookup:
    masking = CodeMasking(VAULT, POLICY)
    return Lookup(store, VAULT, masking, POLICY, throttle or Throttle())  # type: ignore[arg-type]


def _refusal(principal: Principal = OFFICE, error=BadUserInputError, **given):
    store = CardStore()
    with pytest.raises(error) as caught:
        _lookup(store).find(principal, **given)
    assert store.asked == []
    return caught.value.message, caught.value.field


# --- what must be given ------------------------------------------------------------------------


def test_a_lookup_needs_a_token():
    with pytest.raises(UnauthenticatedError) as caught:
        _lookup(CardStore()).find(ANONYMOUS, code=CODE)
    assert caught.value.message == "a bearer token is required"


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({}, None),
        ({"code": CODE, "card_id": "1"}, "code,id"),
        ({"code": CODE, "member_id": "M1"}, "code,member_id"),
        ({"card_id": "1", "member_id": "M1"}, "id,member_id"),
        ({"code": CODE, "card_id": "1", "member_id": "M1"}, "code,id,member_id"),
        ({"code_type": CodeType.PHYSICAL}, None),
    ],
)
def test_exactly_one_of_code_id_or_member_is_given(given, field):
    assert _refusal(**given) == ("giftcard: give exactly one of code, id, member_id or token", field)


@pytest.mark.parametrize("given", [{"card_id": "1"}, {"member_id": "M1"}])
def test_a_code_type_is_only_allowed_with_a_code(given):
    assert _refusal(code_type=CodeType.PHYSICAL, **given) == (
        "code_type: only allowed together with code",
        "code_type",
    )


# --- by id or member ---------------------------------------------------------------------------


@pytest.mark.parametrize("given", [{"card_id": "1"}, {"member_id": "M1"}])
def test_finding_by_id_or_member_needs_list_gift_cards(given):
    assert _refusal(SHOP, ForbiddenError, **given) == ("the token lacks the ListGiftCards permission", None)


def test_a_card_is_found_by_its_id_with_its_codes_shown_as_the_caller_may_see_them():
    store = CardStore(cards=[_card(5, CodeType.PERSONAL, "PERS87654321")])

    result = _lookup(store).find(OFFICE, card_id="5")

    assert store.asked == [("id", 5, ("default",))]
    assert result.limited_by_permission is True  # PERSONAL codes are masked without ViewUnmasked
    assert [code.code for code in result.cards[0].codes] == ["********4321"]


def test_cards_are_found_by_their_member():
    store = CardStore(cards=[_card(5), _card(6)])
    result = _lookup(store).find(OFFICE, member_id="M1")
    assert store.asked == [("member", "M1", ("default",))]
    assert [card.id for card in result.cards] == [5, 6]
    assert result.limited_by_permission is False


@pytest.mark.parametrize(
    ("given", "message", "field"),
    [
        ({"card_id": "0"}, "id: a gift card id is an integer from 1 to 9223372036854775807", "id"),
        (
            {"card_id": "9223372036854775808"},
            "id: a gift card id is an integer from 1 to 9223372036854775807",
            "id",
        ),
        ({"member_id": "has space"}, "member_id: 1 to 64 letters, digits or . _ : @ -", "member_id"),
    ],
)
def test_a_malformed_id_or_member_is_refused(given, message, field):
    assert _refusal(**given) == (message, field)


def test_nothing_found_is_an_empty_result():
    result = _lookup(CardStore()).find(OFFICE, card_id="5")
    assert (result.limited_by_permission, result.cards) == (False, ())


# --- by code -----------------------------------------------------------------------------------


def test_finding_by_code_needs_find_by_code():
    lister = Principal("office", frozenset({"ListGiftCards", "UsePhysicalGiftCardCodes"}))
    assert _refusal(lister, ForbiddenError, code=CODE) == (
        "the token lacks the FindGiftCardByCode permission",
        None,
    )


def test_finding_by_code_needs_some_code_type_to_use():
    finder = Principal("shop", frozenset({"FindGiftCardByCode"}))
    assert _refusal(finder, ForbiddenError, code=CODE) == (
        "the token lacks every Use…GiftCardCodes permission",
        None,
    )


def test_a_code_type_named_needs_its_use_permission():
    assert _refusal(SHOP, ForbiddenError, code=CODE, code_type=CodeType.EXTERNAL) == (
        "the token lacks the UseExternalGiftCardCodes permission for EXTERNAL codes",
        "code_type",
    )


def test_a_malformed_code_is_refused():
    assert _refusal(SHOP, code="ab-c") == (
        "code: a code is 4 to 64 letters and digits (spaces and dashes are ignored)",
        "code",
    )


def test_the_store_is_asked_by_the_hashes_of_the_normalised_code():
    store = CardStore([_match(1)])
    result = _lookup(store).find(SHOP, code="shar-ed12 3456")
    assert store.asked == [("code", VAULT.lookup_hashes(CODE), ("default",))]
    assert [card.id for card in result.cards] == [1]


def test_a_code_the_caller_may_not_use_is_not_found():
    # SHOP may not use EXTERNAL codes: the match is left out as if it did not exist.
    result = _lookup(CardStore([_match(1, CodeType.EXTERNAL)])).find(SHOP, code=CODE)
    assert result.cards == ()


def test_an_expired_code_is_not_found_and_one_expiring_today_is():
    today = datetime.now(UTC).date()
    store = CardStore([_match(1, expires_on=today - timedelta(days=1))])
    assert _lookup(store).find(SHOP, code=CODE).cards == ()
    store = CardStore([_match(2, expires_on=today)])
    assert [card.id for card in _lookup(store).find(SHOP, code=CODE).cards] == [2]


def test_a_code_under_several_types_asks_for_the_type():
    store = CardStore([_match(1, CodeType.PHYSICAL), _match(2, CodeType.PERSONAL)])
    with pytest.raises(BadUserInputError) as caught:
        _lookup(store).find(SHOP, code=CODE)
    assert (caught.value.message, caught.value.field) == (
        "code_type: the code exists under more than one code type; say which",
        "code_type",
    )


@pytest.mark.parametrize(("code_type", "card_id"), [(CodeType.PHYSICAL, 1), (CodeType.PERSONAL, 2)])
def test_naming_the_type_picks_the_card(code_type, card_id):
    store = CardStore([_match(1, CodeType.PHYSICAL), _match(2, CodeType.PERSONAL)])
    result = _lookup(store).find(SHOP, code=CODE, code_type=code_type)
    assert [card.id for card in result.cards] == [card_id]


def test_only_the_types_the_caller_may_use_count_towards_several_matches():
    store = CardStore([_match(1, CodeType.PHYSICAL), _match(2, CodeType.EXTERNAL)])
    assert [card.id for card in _lookup(store).find(SHOP, code=CODE).cards] == [1]


def test_a_code_of_one_type_in_two_of_the_callers_stores_asks_for_the_store():
    store = CardStore([_match(1), _match(2)])  # one PHYSICAL code per store
    with pytest.raises(BadUserInputError) as caught:
        _lookup(store).find(
            Principal("shop", SHOP.permissions, stores=frozenset({"north", "east"})), code=CODE
        )
    assert (caught.value.message, caught.value.field) == (AMBIGUOUS_STORE, "store_id")
    assert store.asked == [("code", VAULT.lookup_hashes(CODE), ("east", "north"))]


@pytest.mark.parametrize(
    ("given", "by", "what"),
    [
        ({"code": CODE}, "code", VAULT.lookup_hashes(CODE)),
        ({"card_id": "5"}, "id", 5),
        ({"member_id": "M1"}, "member", "M1"),
    ],
    ids=["code", "id", "member"],
)
def test_every_lookup_is_made_in_the_callers_stores(given, by, what):
    for principal, stores in (
        (Principal("office", OFFICE.permissions, stores=frozenset({"north", "east"})), ("east", "north")),
        (Principal("office", OFFICE.permissions | {"AllStores"}), None),
    ):
        store = CardStore()
        _lookup(store).find(principal, **given)
        assert store.asked == [(by, what, stores)]


# --- code lookups and the attempt budget -------------------------------------------------------


def test_an_untrusted_lookup_that_finds_the_code_gives_its_unit_back():
    throttle = Throttle()
    _lookup(CardStore([_match(1)]), throttle).find(SHOP, code=CODE)
    # the budget of the caller's stores (test_attempts: each store has its own)
    assert throttle.reserved == [(("subject", "default|shop"), ("address", "default|10.0.0.1"))]
    assert throttle.given_back == 1


@pytest.mark.parametrize(
    "matches",
    [[], [_match(1, CodeType.EXTERNAL)], [_match(1, expires_on=date(2000, 1, 1))]],
    ids=["unknown", "a type the caller may not use", "expired"],
)
def test_an_untrusted_lookup_that_finds_nothing_keeps_its_unit(matches):
    throttle = Throttle()
    _lookup(CardStore(matches), throttle).find(SHOP, code=CODE)
    assert (len(throttle.reserved), throttle.given_back) == (1, 0)


def test_a_trusted_lookup_spends_no_budget():
    throttle = Throttle()
    _lookup(CardStore([_match(1)]), throttle).find(OFFICE, code=CODE)
    assert throttle.reserved == []


def test_a_refusal_before_the_code_is_looked_at_spends_no_budget():
    throttle = Throttle()
    with pytest.raises(BadUserInputError):
        _lookup(CardStore(), throttle).find(SHOP, code="x")
    assert throttle.reserved == []
