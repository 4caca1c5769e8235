"""What a transaction addresses: the live code, its PIN and expiry checked under the locks, and the
card usable now; trusted callers told why, everyone else the uniform refusal (stand-ins for the
ledger's reads, the row locks and the PIN keys, no database)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.config import Settings
from app.domain import addressing as addressing_module
from app.domain.addressing import AMBIGUOUS_STORE, UNUSABLE, Addressing, Guards, refuse
from app.domain.codes import CodeVault
from app.domain.pins import PinCheck, StoredPin
from app.enums import CardState, CodeType
from app.errors import BadUserInputError, BusyError, CardNotUsableError, ConflictError, NotFoundError
from app.models import GiftCard
from app.policy import Principal
from app.store.ledger import AddressedCode, LockedCode

KEY = base64.b64encode(b"a" * 32).decode()
VAULT = CodeVault.from_settings(Settings(code_lookup_key=KEY, code_encryption_keys=f"k1:{KEY}"))
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TODAY = NOW.date()
LOCKOUT = timedelta(minutes=15)
GUARDS = Guards(throttle=None, pin_max_failures=5, pin_lockout=LOCKOUT, refusal_floor=timedelta(0))  # type: ignore[arg-type]

TRUSTED = Principal("office", frozenset({"ListGiftCards", "UsePhysicalGiftCardCodes"}))
FINDER = Principal("pos", frozenset({"FindGiftCardByCode", "UsePhysicalGiftCardCodes"}))
UNTRUSTED = Principal("kiosk", frozenset({"UsePhysicalGiftCardCodes"}))
TWO_STORES = Principal("office", TRUSTED.permissions, stores=frozenset({"north", "east"}))

KEYED = "keyed-pin-value"  # a PIN's stored value under key p1; "1234" is its PIN
LEGACY = "$argon2id$legacy"  # an argon2 hash from before keyed PINs; "1234" is its PIN
SESSION: Any = object()


def _uniform(error: BaseException) -> bool:
    return type(error) is CardNotUsableError and error.message == UNUSABLE and error.field is None


@dataclass
class Journal:
    """What the stand-ins were asked, in order."""

    steps: list[tuple[object, ...]] = field(default_factory=list)


class LedgerReads:
    """Stands in for the LedgerStore: the live and revoked codes, by lookup hash, type and the
    caller's stores (one live code, or one per store when ``live`` is a list)."""

    def __init__(
        self, journal: Journal, live: AddressedCode | list[AddressedCode] | None = None, revoked: bool = False
    ) -> None:
        self.journal, self.live, self.revoked = journal, live, revoked

    def live_codes(self, lookup_hashes, code_type, stores):
        self.journal.steps.append(("live_codes", lookup_hashes, code_type, stores))
        return list(self.live) if isinstance(self.live, list) else [] if self.live is None else [self.live]

    def revoked_code_exists(self, lookup_hashes, code_type, stores):
        self.journal.steps.append(("revoked_code_exists", lookup_hashes, code_type, stores))
        return self.revoked


class Locks:
    """Stands in for the row locks of ``app.store.cards`` and ``app.store.ledger``, and the PIN
    counters of the latter; only ever asked within the mutation's session."""

    def __init__(
        self, journal: Journal, card: GiftCard | None = None, code: LockedCode | None = None
    ) -> None:
        self.journal, self.card, self.code = journal, card, code

    def card_for_update(self, session, card_id, stores):
        """The card if it has that id and is in ``stores`` (None: every store), as the store's."""
        assert session is SESSION
        self.journal.steps.append(("lock card", card_id, stores))
        card = self.card
        found = card is not None and card.id == card_id and (stores is None or card.store_id in stores)
        return card if found else None

    def lock_card(self, session, card_id, stores, now):
        """As ``card_for_update``, the money path's statement (the holds are the card's business)."""
        assert now == NOW
        return self.card_for_update(session, card_id, stores)

    def lock_card_and_code(self, session, card_id, code_id, now):
        """The card, then the code, as one statement locks them."""
        return self.lock_card(session, card_id, None, now), self.code_for_update(session, code_id)

    def keep(self, session, card):
        """The card the guard locked is read again by the work here: these tests take one step."""

    def kept(self, session, card_id, stores):
        return None

    def code_for_update(self, session, code_id):
        assert session is SESSION
        self.journal.steps.append(("lock code", code_id))
        assert self.code is not None
        return self.code

    def record_pin_failure(self, session, code_id, max_failures, locked_until):
        assert session is SESSION
        self.journal.steps.append(("pin failure", code_id, max_failures, locked_until))

    def record_pin_success(self, session, code_id, value=None, key_ids=None):
        assert session is SESSION
        self.journal.steps.append(("pin success", code_id, value, key_ids))


class Pins:
    """Stands in for PinKeys: "1234" is the PIN of every stored value; a keyed value under an old
    key (or a legacy hash) asks to be replaced; ``busy`` makes every check raise BusyError."""

    def __init__(self, journal: Journal, busy: bool = False) -> None:
        self.journal, self.busy = journal, busy

    def verify(self, code_id, pin, stored):
        self.journal.steps.append(("verify", code_id, pin, stored))
        if self.busy:
            raise BusyError("the server is busy; try again", retry_after=2)
        if pin != "1234":
            return PinCheck(False)
        current = stored.key_ids == "p2"
        return PinCheck(True, None if current else StoredPin("replaced", "p2"))


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def locks(monkeypatch, journal):
    """Installs the stand-in locks for a card and a code; returns them."""

    def install(card: GiftCard | None = None, code: LockedCode | None = None) -> Locks:
        stand_in = Locks(journal, card, code)
        monkeypatch.setattr(addressing_module, "money", stand_in)
        monkeypatch.setattr(addressing_module, "store", stand_in)
        return stand_in

    return install


def _addressing(
    journal: Journal, live: AddressedCode | list[AddressedCode] | None = None, *, revoked=False, busy=False
) -> Addressing:
    return Addressing(LedgerReads(journal, live, revoked), VAULT, Pins(journal, busy), GUARDS)  # type: ignore[arg-type]


def _card(state: CardState = CardState.ACTIVE, **window: Any) -> GiftCard:
    return GiftCard(
        id=7, currency="EUR", state=state.value, balance=100, created_at=NOW, updated_at=NOW, **window
    )


def _addressed(pin_hash: str | None = None, pin_key_ids: str | None = None) -> AddressedCode:
    return AddressedCode(
        code_id=70, giftcard_id=7, expires_on=None, pin_hash=pin_hash, pin_key_ids=pin_key_ids
    )


def _locked(
    pin_hash: str | None = None,
    pin_key_ids: str | None = None,
    *,
    revoked: bool = False,
    expires_on: date | None = None,
    failures: int = 0,
    locked_until: datetime | None = None,
) -> LockedCode:
    return LockedCode(revoked, expires_on, pin_hash, pin_key_ids, failures, locked_until)


# --- refuse ------------------------------------------------------------------------------------


def test_a_trusted_caller_is_refused_with_the_error_itself():
    error = NotFoundError("code: no live code of that type", field="code")
    assert refuse(TRUSTED, error) is error


@pytest.mark.parametrize("principal", [FINDER, UNTRUSTED], ids=["FindGiftCardByCode", "neither"])
def test_a_caller_that_cannot_list_cards_gets_the_uniform_refusal(principal):
    # Unlike balances.hide, finding by code is not enough here: this hides which code or PIN failed.
    assert _uniform(refuse(principal, ConflictError("x: no", field="x")))


# --- the live code -----------------------------------------------------------------------------


def test_the_live_code_is_looked_up_by_the_hashes_of_the_normalised_code(journal):
    found = _addressed()
    assert _addressing(journal, found).live_code(UNTRUSTED, CodeType.PHYSICAL, "phys-1234 5678") is found
    assert journal.steps == [("live_codes", VAULT.lookup_hashes("PHYS12345678"), "PHYSICAL", ("default",))]


def test_a_trusted_caller_is_told_the_code_was_revoked(journal):
    with pytest.raises(CardNotUsableError) as caught:
        _addressing(journal, revoked=True).live_code(TRUSTED, CodeType.EXTERNAL, "EXT00001")
    assert (caught.value.message, caught.value.field) == ("code: the code was revoked", "code")
    assert journal.steps[-1] == (
        "revoked_code_exists",
        VAULT.lookup_hashes("EXT00001"),
        "EXTERNAL",
        ("default",),
    )


def test_a_trusted_caller_is_told_there_is_no_such_code(journal):
    with pytest.raises(NotFoundError) as caught:
        _addressing(journal).live_code(TRUSTED, CodeType.PHYSICAL, "PHYS12345678")
    assert (caught.value.message, caught.value.field) == ("code: no live code of that type", "code")


@pytest.mark.parametrize("revoked", [True, False])
def test_an_untrusted_caller_gets_the_uniform_refusal_for_a_missing_code(journal, revoked):
    with pytest.raises(CardNotUsableError) as caught:
        _addressing(journal, revoked=revoked).live_code(FINDER, CodeType.PHYSICAL, "PHYS12345678")
    assert _uniform(caught.value)
    assert [step[0] for step in journal.steps] == ["live_codes"]  # revoked codes are not even asked about


def test_a_code_live_in_two_of_the_callers_stores_is_refused_as_ambiguous(journal):
    with pytest.raises(BadUserInputError) as caught:
        _addressing(journal, [_addressed(), _addressed()]).live_code(
            TWO_STORES, CodeType.PHYSICAL, "PHYS12345678"
        )
    assert (caught.value.message, caught.value.field) == (AMBIGUOUS_STORE, "store_id")
    assert journal.steps == [
        ("live_codes", VAULT.lookup_hashes("PHYS12345678"), "PHYSICAL", ("east", "north"))
    ]


# --- the usable card ---------------------------------------------------------------------------

UNUSABLE_CARDS = [
    (_card(CardState.BLOCKED), "the card is blocked"),
    (_card(CardState.DEACTIVATED), "the card is deactivated"),
    (_card(usable_from=NOW + timedelta(microseconds=1)), "the card is not usable yet"),
    (_card(expires_at=NOW), "the card has expired"),
    (_card(expires_at=NOW - timedelta(days=1)), "the card has expired"),
    (_card(CardState.BLOCKED, expires_at=NOW - timedelta(days=1)), "the card is blocked"),  # state first
]


@pytest.mark.parametrize(("card", "reason"), UNUSABLE_CARDS)
def test_a_trusted_caller_is_told_why_the_card_is_not_usable(journal, locks, card, reason):
    locks(card)
    with pytest.raises(CardNotUsableError) as caught:
        _addressing(journal).usable_card(SESSION, TRUSTED, 7, NOW)
    assert (caught.value.message, caught.value.field) == (reason, None)


@pytest.mark.parametrize(("card", "reason"), UNUSABLE_CARDS)
def test_an_untrusted_caller_gets_the_uniform_refusal_for_an_unusable_card(journal, locks, card, reason):
    locks(card)
    with pytest.raises(CardNotUsableError) as caught:
        _addressing(journal).usable_card(SESSION, FINDER, 7, NOW)
    assert _uniform(caught.value)


@pytest.mark.parametrize(
    "card",
    [
        _card(CardState.PENDING),
        _card(CardState.ACTIVE),
        _card(usable_from=NOW, expires_at=NOW + timedelta(microseconds=1)),
    ],
    ids=["pending", "active", "window just open"],
)
def test_a_usable_card_is_returned_locked(journal, locks, card):
    locks(card)
    assert _addressing(journal).usable_card(SESSION, UNTRUSTED, 7, NOW) is card
    assert journal.steps == [("lock card", 7, ("default",))]  # in the caller's stores only


def test_a_missing_card_is_not_found_for_a_trusted_caller_and_uniform_for_others(journal, locks):
    locks(None)
    with pytest.raises(NotFoundError) as caught:
        _addressing(journal).usable_card(SESSION, TRUSTED, 7, NOW)
    assert (caught.value.message, caught.value.field) == ("giftcard_id: no such card", "giftcard_id")
    with pytest.raises(CardNotUsableError) as hidden:
        _addressing(journal).usable_card(SESSION, UNTRUSTED, 7, NOW)
    assert _uniform(hidden.value)


def test_a_card_of_another_store_is_not_found(journal, locks):
    locks(_card(store_id="north"))
    with pytest.raises(NotFoundError) as caught:
        _addressing(journal).usable_card(SESSION, TRUSTED, 7, NOW)
    assert caught.value.field == "giftcard_id"
    assert _addressing(journal).usable_card(SESSION, TWO_STORES, 7, NOW).store_id == "north"


# --- the code's guard --------------------------------------------------------------------------


def _guard(journal: Journal, code: AddressedCode, pin: str | None, principal=TRUSTED, **pins):
    """The guard's refusal (None when it passes)."""
    return _addressing(journal, code, **pins).code_guard(principal, code, pin, NOW)(SESSION)


def test_a_code_without_a_pin_passes_with_the_card_locked_before_the_code(journal, locks):
    locks(_card(), _locked())
    assert _guard(journal, _addressed(), None) is None
    assert journal.steps == [("lock card", 7, None), ("lock code", 70)]


def test_a_pin_given_for_a_code_without_one_is_refused(journal, locks):
    locks(_card(), _locked())
    error = _guard(journal, _addressed(), "1234")
    assert (type(error), error.message, error.field) == (
        CardNotUsableError,
        "pin: this code has no PIN",
        "pin",
    )


def test_a_code_revoked_since_it_was_addressed_is_refused_and_no_pin_is_checked(journal, locks):
    locks(_card(), _locked(KEYED, "p1", revoked=True))
    error = _guard(journal, _addressed(KEYED, "p1"), "9999")
    assert (type(error), error.message, error.field) == (
        CardNotUsableError,
        "code: the code was revoked",
        "code",
    )
    assert [step[0] for step in journal.steps] == ["lock card", "lock code"]


def test_the_right_pin_passes_and_counts_nothing_when_no_wrong_one_came_before(journal, locks):
    locks(_card(), _locked(KEYED, "p2"))
    assert _guard(journal, _addressed(KEYED, "p2"), "1234") is None
    assert journal.steps[-1] == ("verify", 70, "1234", StoredPin(KEYED, "p2"))


def test_the_right_pin_ends_a_run_of_wrong_ones(journal, locks):
    locks(_card(), _locked(KEYED, "p2", failures=3))
    assert _guard(journal, _addressed(KEYED, "p2"), "1234") is None
    assert journal.steps[-1] == ("pin success", 70, None, None)


def test_the_right_pin_moves_its_stored_value_to_the_current_key(journal, locks):
    locks(_card(), _locked(KEYED, "p1", failures=2))
    assert _guard(journal, _addressed(KEYED, "p1"), "1234") is None
    assert journal.steps[-1] == ("pin success", 70, "replaced", "p2")


def test_a_wrong_pin_is_refused_and_counted_towards_the_lockout(journal, locks):
    locks(_card(), _locked(KEYED, "p2"))
    error = _guard(journal, _addressed(KEYED, "p2"), "9999")
    assert (type(error), error.message, error.field) == (
        CardNotUsableError,
        "pin: wrong or missing PIN",
        "pin",
    )
    assert journal.steps[-1] == ("pin failure", 70, 5, NOW + LOCKOUT)


def test_a_missing_pin_is_refused_but_not_counted(journal, locks):
    locks(_card(), _locked(KEYED, "p2"))
    error = _guard(journal, _addressed(KEYED, "p2"), None)
    assert (error.message, error.field) == ("pin: wrong or missing PIN", "pin")
    assert journal.steps == [("lock card", 7, None), ("lock code", 70)]  # not verified, not counted


def test_a_locked_code_refuses_even_the_right_pin_and_counts_nothing(journal, locks):
    until = NOW + timedelta(seconds=1)
    locks(_card(), _locked(KEYED, "p2", locked_until=until))
    error = _guard(journal, _addressed(KEYED, "p2"), "1234")
    assert (type(error), error.field) == (CardNotUsableError, "pin")
    assert error.message == (
        "pin: locked after too many wrong PINs until 2026-12-01T12:00:01+00:00; "
        "giftcard_edit with unlock_physical_pin ends it"
    )
    assert journal.steps == [("lock card", 7, None), ("lock code", 70)]


def test_a_lockout_ending_now_is_over(journal, locks):
    locks(_card(), _locked(KEYED, "p2", locked_until=NOW))
    assert _guard(journal, _addressed(KEYED, "p2"), "1234") is None


def test_a_code_past_its_expiry_date_is_refused(journal, locks):
    locks(_card(), _locked(expires_on=TODAY - timedelta(days=1)))
    error = _guard(journal, _addressed(), None)
    assert (type(error), error.message, error.field) == (
        CardNotUsableError,
        "code: the code has expired",
        "code",
    )


def test_a_code_expiring_today_still_passes(journal, locks):
    locks(_card(), _locked(expires_on=TODAY))
    assert _guard(journal, _addressed(), None) is None


def test_a_wrong_pin_is_reported_before_an_expired_code(journal, locks):
    locks(_card(), _locked(KEYED, "p2", expires_on=TODAY - timedelta(days=1)))
    assert _guard(journal, _addressed(KEYED, "p2"), "9999").message == "pin: wrong or missing PIN"


@pytest.mark.parametrize(
    ("locked", "pin"),
    [
        (_locked(KEYED, "p2"), "9999"),
        (_locked(KEYED, "p2"), None),
        (_locked(KEYED, "p2", locked_until=NOW + LOCKOUT), "1234"),
        (_locked(revoked=True), None),
        (_locked(), "1234"),
        (_locked(expires_on=TODAY - timedelta(days=1)), None),
    ],
    ids=["wrong PIN", "missing PIN", "locked", "revoked", "PIN for a code without one", "expired"],
)
def test_an_untrusted_caller_gets_the_uniform_refusal_from_the_guard(journal, locks, locked, pin):
    locks(_card(), locked)
    assert _uniform(_guard(journal, _addressed(KEYED, "p2"), pin, FINDER))


def test_an_untrusted_caller_with_the_right_pin_passes(journal, locks):
    locks(_card(), _locked(KEYED, "p2", failures=1))
    assert _guard(journal, _addressed(KEYED, "p2"), "1234", UNTRUSTED) is None
    assert journal.steps[-1] == ("pin success", 70, None, None)


def test_a_wrong_pin_from_an_untrusted_caller_is_still_counted(journal, locks):
    locks(_card(), _locked(KEYED, "p2"))
    _guard(journal, _addressed(KEYED, "p2"), "9999", UNTRUSTED)
    assert journal.steps[-1] == ("pin failure", 70, 5, NOW + LOCKOUT)


# --- argon2 PINs, checked before the locks -----------------------------------------------------


def test_a_legacy_pin_is_checked_before_any_lock_and_not_again_under_it(journal, locks):
    locks(_card(), _locked(LEGACY, None))
    addressing = _addressing(journal, _addressed(LEGACY, None))
    guard = addressing.code_guard(TRUSTED, _addressed(LEGACY, None), "1234", NOW)
    assert journal.steps == [("verify", 70, "1234", StoredPin(LEGACY, None))]

    assert guard(SESSION) is None

    assert journal.steps[1:] == [
        ("lock card", 7, None),
        ("lock code", 70),
        ("pin success", 70, "replaced", "p2"),
    ]


def test_a_legacy_pin_changed_since_its_check_is_checked_again_under_the_lock(journal, locks):
    locks(_card(), _locked(KEYED, "p2"))  # rotated or replaced in between
    guard = _addressing(journal).code_guard(TRUSTED, _addressed(LEGACY, None), "9999", NOW)

    error = guard(SESSION)

    assert error is not None and error.message == "pin: wrong or missing PIN"
    verified = [step for step in journal.steps if step[0] == "verify"]
    assert verified == [
        ("verify", 70, "9999", StoredPin(LEGACY, None)),
        ("verify", 70, "9999", StoredPin(KEYED, "p2")),
    ]


@pytest.mark.parametrize(
    ("code", "pin"),
    [(_addressed(KEYED, "p2"), "1234"), (_addressed(LEGACY, None), None), (_addressed(), "1234")],
    ids=["keyed PIN", "no PIN given", "code without a PIN"],
)
def test_only_a_given_pin_against_an_argon2_hash_is_checked_before_the_locks(journal, code, pin):
    _addressing(journal, code).code_guard(TRUSTED, code, pin, NOW)
    assert journal.steps == []


def test_a_busy_server_is_told_to_a_trusted_caller(journal):
    with pytest.raises(BusyError) as caught:
        _addressing(journal, busy=True).code_guard(TRUSTED, _addressed(LEGACY, None), "1234", NOW)
    assert caught.value.retry_after == 2


def test_a_busy_server_is_the_uniform_refusal_for_an_untrusted_caller(journal):
    # UNAVAILABLE would tell that the code exists and has a PIN.
    with pytest.raises(CardNotUsableError) as caught:
        _addressing(journal, busy=True).code_guard(FINDER, _addressed(LEGACY, None), "1234", NOW)
    assert _uniform(caught.value)
