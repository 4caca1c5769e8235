"""What a transaction addresses: the live code, its PIN and expiry checked under the row locks, and
the card, usable now. Callers without ListGiftCards get one refusal for an unknown code, a wrong or
missing PIN, an expired or revoked code and an unusable card, so it tells an attacker nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from app.auth.throttle import Throttle
from app.domain.codes import CodeVault, normalise
from app.domain.mutations import Guard
from app.domain.pins import PinCheck, PinKeys, StoredPin
from app.enums import CardState, CodeType
from app.errors import BadUserInputError, BusyError, CardNotUsableError, GiftCardError, NotFoundError
from app.events import Event, Events
from app.models import GiftCard
from app.policy import Principal
from app.store import ledger as store
from app.store import money
from app.store.ledger import AddressedCode, LedgerStore, LockedCode
from app.store.money import LockedCard

UNUSABLE = "no usable gift card matches this code and PIN"
AMBIGUOUS_STORE = "store_id: the code is in more than one of the token's stores; say which"

# An argon2 PIN checked before any lock: the stored value checked, and the outcome.
Prechecked = tuple[str, PinCheck]


@dataclass(frozen=True, slots=True)
class Guards:
    """What stands between an untrusted caller and guessing codes and PINs."""

    throttle: Throttle  # code attempts per subject and address
    pin_max_failures: int  # wrong PINs in a row that lock a code …
    pin_lockout: timedelta  # … for this long
    refusal_floor: timedelta  # an untrusted refusal takes at least this long
    events: Events = field(default_factory=Events)  # told of each code a wrong PIN locks

    @contextmanager
    def floored(self, principal: Principal) -> Iterator[None]:
        """Every untrusted refusal in the block takes the floor, counted from the block's start (a
        field's, not the request's: a second refusal in one document, or a body sent slowly, would
        eat into it), so its timing tells nothing of which check failed. It must outlast the slowest."""
        started = time.monotonic()
        try:
            yield
        except CardNotUsableError:
            if not principal.is_trusted:
                remaining = self.refusal_floor.total_seconds() - (time.monotonic() - started)
                if remaining > 0:
                    time.sleep(remaining)
            raise


def refuse(principal: Principal, trusted_error: GiftCardError) -> GiftCardError:
    """The refusal as the caller sees it: the uniform one unless it may list cards."""
    return trusted_error if principal.is_trusted else CardNotUsableError(UNUSABLE)


class Addressing:
    """Finds the code and card a transaction addresses, and checks the code's PIN."""

    def __init__(self, store: LedgerStore, vault: CodeVault, pins: PinKeys, guards: Guards) -> None:
        self._store = store
        self._vault = vault
        self._pins = pins
        self._guards = guards

    def live_code(self, principal: Principal, code_type: CodeType, code: str) -> AddressedCode:
        """The live code of that type and value; its PIN is checked later, under its lock."""
        hashes, stores = self._vault.lookup_hashes(normalise(code)), principal.store_ids()
        found = self._store.live_codes(hashes, code_type.value, stores)
        if len(found) > 1:
            # Untrusted, the code's PIN is not checked yet: saying that the code exists would tell
            # what the uniform refusal hides. Such a caller names the store (storeId) instead.
            raise refuse(principal, BadUserInputError(AMBIGUOUS_STORE, field="store_id"))
        if found:
            return found[0]
        if principal.is_trusted and self._store.revoked_code_exists(hashes, code_type.value, stores):
            raise CardNotUsableError("code: the code was revoked", field="code")
        raise refuse(principal, NotFoundError("code: no live code of that type", field="code"))

    def code_guard(self, principal: Principal, code: AddressedCode, pin: str | None, now: datetime) -> Guard:
        """The code's check for the runner to run under the locks; an argon2 PIN is checked now."""
        prechecked = self._precheck_legacy_pin(principal, code, pin)

        def guard(session: Session) -> GiftCardError | None:
            return self._check_code(session, principal, code, pin, now, prechecked)

        return guard

    def usable_card(self, session: Session, principal: Principal, card_id: int, now: datetime) -> LockedCard:
        """The card, locked (by the code's guard, or now), if it can take transactions at ``now``."""
        stores = principal.store_ids()
        card = money.kept(session, card_id, stores) or money.lock_card(session, card_id, stores, now)
        if card is None:
            raise refuse(principal, NotFoundError("giftcard_id: no such card", field="giftcard_id"))
        self.check_usable(principal, card, now)
        return card

    def check_usable(self, principal: Principal, card: LockedCard | GiftCard, now: datetime) -> None:
        """Refuses a card (locked already) that cannot take transactions at ``now``."""
        if card.state in (CardState.BLOCKED, CardState.DEACTIVATED):
            raise refuse(principal, CardNotUsableError(f"the card is {card.state.lower()}"))
        if (start := card.usable_from) is not None and now < start:
            raise refuse(principal, CardNotUsableError("the card is not usable yet"))
        if (end := card.expires_at) is not None and now >= end:
            raise refuse(principal, CardNotUsableError("the card has expired"))

    def _precheck_legacy_pin(
        self, principal: Principal, code: AddressedCode, pin: str | None
    ) -> Prechecked | None:
        """An argon2 PIN checked before any lock, so its ~100 ms never holds the card (nor SQLite's
        write lock). A busy server is, to an untrusted caller, the uniform refusal: UNAVAILABLE
        would tell that the code exists."""
        if pin is None or code.pin_hash is None or code.pin_key_ids is not None:
            return None
        try:
            return code.pin_hash, self._pins.verify(code.code_id, pin, StoredPin(code.pin_hash, None))
        except BusyError as busy:
            raise refuse(principal, busy) from None

    def _check_code(
        self,
        session: Session,
        principal: Principal,
        code: AddressedCode,
        pin: str | None,
        now: datetime,
        prechecked: Prechecked | None,
    ) -> GiftCardError | None:
        """The code's state and PIN under the card's and the code's row locks (card first, as every
        writer locks), in the debit's transaction: concurrent wrong PINs are counted one by one."""
        # The code's card (found in the caller's stores), read once for the work that follows.
        card, locked = money.lock_card_and_code(session, code.giftcard_id, code.code_id, now)
        money.keep(session, card)
        error: GiftCardError | None = None
        if locked.revoked:  # between addressing and now
            error = CardNotUsableError("code: the code was revoked", field="code")
        elif locked.pin_hash is not None:
            error = self._check_pin(session, code.code_id, locked, pin, now, prechecked)
        elif pin is not None:
            error = CardNotUsableError("pin: this code has no PIN", field="pin")
        if error is None and locked.expires_on is not None and locked.expires_on < now.date():
            error = CardNotUsableError("code: the code has expired", field="code")
        return None if error is None else refuse(principal, error)

    def _check_pin(
        self,
        session: Session,
        code_id: int,
        locked: LockedCode,
        pin: str | None,
        now: datetime,
        prechecked: Prechecked | None,
    ) -> GiftCardError | None:
        """The PIN against the code's, under its lock: none is checked while the code is locked
        (even the right one), a wrong one is counted, a right one ends the run of wrong ones."""
        if (until := locked.pin_locked_until) is not None and until > now:
            return CardNotUsableError(
                f"pin: locked after too many wrong PINs until {until.isoformat()}; "
                "giftcard_edit with unlock_physical_pin ends it",
                field="pin",
            )
        check = self._verify(code_id, locked, pin, prechecked)
        if not check.ok:
            if pin is not None:  # a missing PIN is a POS bug, not a guess: not counted
                self._count_wrong_pin(session, code_id, locked, now)
            return CardNotUsableError("pin: wrong or missing PIN", field="pin")
        if (replacement := check.replacement) is not None:  # moves to the current key alone
            store.record_pin_success(session, code_id, replacement.value, replacement.key_ids)
        elif locked.failed_pin_attempts:
            store.record_pin_success(session, code_id)
        return None

    def _count_wrong_pin(self, session: Session, code_id: int, locked: LockedCode, now: datetime) -> None:
        """One more wrong PIN in a row; the one that reaches the limit locks the code (read under
        the code's lock, so exactly one request sees the count reach it)."""
        guards = self._guards
        store.record_pin_failure(session, code_id, guards.pin_max_failures, now + guards.pin_lockout)
        if locked.failed_pin_attempts + 1 >= guards.pin_max_failures:
            guards.events.note(Event.PIN_LOCKOUT)

    def _verify(
        self, code_id: int, locked: LockedCode, pin: str | None, prechecked: Prechecked | None
    ) -> PinCheck:
        """``pin`` against the stored PIN; a precheck counts if the stored value is still the one checked."""
        assert locked.pin_hash is not None  # only a code with a PIN is checked
        if pin is None:
            return PinCheck(False)
        if prechecked is not None and prechecked[0] == locked.pin_hash:
            return prechecked[1]
        return self._pins.verify(code_id, pin, StoredPin(locked.pin_hash, locked.pin_key_ids))
