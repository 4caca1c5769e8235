"""Money movements: immediate transactions, authorize → capture / cancel, and the card rules.

Every balance change is one conditional update of the card row (``balance + amount >= 0``, and
for a credit no more than the ``GIFTCARDS_MAX_BALANCE`` ceiling) and its ledger row, in one
database transaction that holds the card's row lock (PostgreSQL) or the write lock (SQLite,
``BEGIN IMMEDIATE``); a check constraint backs the floor. A card's balance is the sum
of its COMPLETED entries; its available balance is that minus open, unexpired debit holds.

Callers without ListGiftCards get one and the same refusal for an unknown code, a wrong or missing
PIN, an expired or revoked code and a card that cannot take transactions, so the answer tells an
attacker nothing; trusted callers are told which it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session

from app.auth.throttle import Throttle
from app.domain.attempts import CodeAttempt, code_attempt
from app.domain.codes import CodeVault, normalise, validate_code, validate_pin
from app.domain.identifiers import check_text, parse_card_id
from app.domain.money import check_amount, format_amount, minor_units, parse_amount
from app.domain.mutations import MutationRunner
from app.domain.pins import PinCheck, PinKeys, StoredPin
from app.entities import Transaction
from app.enums import CardState, CodeType, Operation, TransStatus, TransType
from app.errors import (
    BadUserInputError,
    BusyError,
    CardNotUsableError,
    ConflictError,
    GiftCardError,
    InsufficientFundsError,
    LimitExceededError,
    NotFoundError,
    UnauthenticatedError,
)
from app.models import GiftCard, LedgerEntry
from app.policy import Permission, Policy, Principal
from app.store import cards as card_store
from app.store import ledger as store
from app.store.ledger import AddressedCode

PERMISSION_OF = {
    TransType.ADD: Permission.TRANS_ADD,
    TransType.USE: Permission.TRANS_USE,
    TransType.ADJUST: Permission.TRANS_ADJUST,
    TransType.EXTERNAL: Permission.TRANS_EXTERNAL,
    TransType.IMPORT: Permission.TRANS_IMPORT,
}
UNUSABLE = "no usable gift card matches this code and PIN"


@dataclass(frozen=True, slots=True)
class Guards:
    """What stands between an untrusted caller and guessing codes and PINs."""

    throttle: Throttle  # code attempts per subject and address
    pin_max_failures: int  # wrong PINs in a row that lock a code …
    pin_lockout: timedelta  # … for this long
    refusal_floor: timedelta  # an untrusted refusal takes at least this long


@dataclass(frozen=True)
class TransRequest:
    trans_type: TransType
    amount: str
    code_type: CodeType | None = None
    code: str | None = None
    pin: str | None = None
    giftcard_id: str | None = None
    authorize_only: bool = False
    allow_partial: bool = False
    source_id: str | None = None
    ref_no: str | None = None
    note: str | None = None


class Ledger:
    """Creates, captures and cancels transactions."""

    def __init__(
        self,
        engine: Engine,
        runner: MutationRunner,
        vault: CodeVault,
        pins: PinKeys,
        policy: Policy,
        hold_ttl: timedelta,
        guards: Guards,
        max_balance: int,
    ) -> None:
        self._guards = guards
        self._max_balance = max_balance  # whole major units of each card's own currency
        self._engine = engine
        self._runner = runner
        self._vault = vault
        self._pins = pins
        self._policy = policy
        self._hold_ttl = hold_ttl

    # --- addressing ------------------------------------------------------------------------

    def _refuse(self, principal: Principal, trusted_error: GiftCardError) -> GiftCardError:
        return trusted_error if principal.is_trusted else CardNotUsableError(UNUSABLE)

    def _card_addressed(self, principal: Principal, request: TransRequest) -> int | None:
        """The card id a request by ``giftcardId`` addresses, or None for a request by code (whose
        codeType and code are then checked, but not looked up)."""
        by_code = request.code is not None or request.code_type is not None
        if by_code == (request.giftcard_id is not None):
            raise BadUserInputError("trans: give codeType and code, or giftcardId", field="trans")
        if request.giftcard_id is not None:
            principal.require(Permission.LIST_GIFT_CARDS)
            if request.pin is not None:
                raise BadUserInputError("pin: only allowed with a code", field="pin")
            return parse_card_id(request.giftcard_id, "giftcardId")
        if request.code is None or request.code_type is None:
            missing = "code" if request.code is None else "codeType"
            raise BadUserInputError(f"{missing}: give both codeType and code", field=missing)
        self._policy.require_code_type(principal, request.code_type, name_type=False)
        validate_code(request.code, "code")
        return None

    def _code_addressed(self, principal: Principal, request: TransRequest) -> AddressedCode:
        """The live code a request by code addresses (checked by ``_card_addressed``); its PIN is
        checked later, under its lock."""
        assert request.code is not None and request.code_type is not None
        hashes = self._vault.lookup_hashes(normalise(request.code))
        found = store.live_code(self._engine, hashes, request.code_type.value)
        if found is not None:
            return found
        if principal.is_trusted and store.revoked_code_exists(self._engine, hashes, request.code_type.value):
            raise CardNotUsableError("code: the code was revoked", field="code")
        raise self._refuse(principal, NotFoundError("code: no live code of that type", field="code"))

    def _precheck_legacy_pin(
        self, principal: Principal, code: AddressedCode, pin: str | None
    ) -> tuple[str, PinCheck] | None:
        """An argon2 PIN (from before keyed PINs) checked before any lock is taken, so that its
        ~100 ms never holds the card (nor SQLite's write lock); the result counts under the lock
        only if the stored value is still the one checked. A busy server is, to a caller without
        ListGiftCards, the uniform refusal: UNAVAILABLE would tell that the code exists."""
        if pin is None or code.pin_hash is None or code.pin_key_ids is not None:
            return None
        try:
            return code.pin_hash, self._pins.verify(code.code_id, pin, StoredPin(code.pin_hash, None))
        except BusyError as busy:
            raise self._refuse(principal, busy) from None

    def _check_code(
        self,
        session: Session,
        principal: Principal,
        card_id: int,
        code_id: int,
        pin: str | None,
        now: datetime,
        prechecked: tuple[str, PinCheck] | None = None,
    ) -> GiftCardError | None:
        """The code's state and PIN, checked and recorded under the card's and the code's row locks
        (card first, as every writer locks), in the transaction of the debit it guards: concurrent
        wrong PINs are counted one by one, and none is checked once the code is locked."""
        card_store.card_for_update(session, card_id)
        code = store.code_for_update(session, code_id)
        if code.revoked:  # between addressing and now
            return self._refuse(principal, CardNotUsableError("code: the code was revoked", field="code"))
        if code.pin_hash is not None:
            if code.pin_locked_until is not None and code.pin_locked_until > now:  # even the right PIN
                return self._refuse(
                    principal,
                    CardNotUsableError(
                        f"pin: locked after too many wrong PINs until {code.pin_locked_until.isoformat()}; "
                        "giftcardEdit with unlockPhysicalPin ends it",
                        field="pin",
                    ),
                )
            if pin is None:
                check = PinCheck(False)
            elif prechecked is not None and prechecked[0] == code.pin_hash:
                check = prechecked[1]
            else:
                check = self._pins.verify(code_id, pin, StoredPin(code.pin_hash, code.pin_key_ids))
            if not check.ok:
                if pin is not None:  # a missing PIN is a POS bug, not a guess: not counted
                    store.record_pin_failure(
                        session, code_id, self._guards.pin_max_failures, now + self._guards.pin_lockout
                    )
                return self._refuse(principal, CardNotUsableError("pin: wrong or missing PIN", field="pin"))
            if (replacement := check.replacement) is not None:  # moves to the current key alone
                store.record_pin_success(session, code_id, replacement.value, replacement.key_ids)
            elif code.failed_pin_attempts:
                store.record_pin_success(session, code_id)
        elif pin is not None:
            return self._refuse(principal, CardNotUsableError("pin: this code has no PIN", field="pin"))
        if code.expires_on is not None and code.expires_on < now.date():
            return self._refuse(principal, CardNotUsableError("code: the code has expired", field="code"))
        return None

    def _usable_card(self, session: Session, principal: Principal, card_id: int, now: datetime) -> GiftCard:
        card = card_store.card_for_update(session, card_id)
        if card is None:
            raise self._refuse(principal, NotFoundError("giftcardId: no such card", field="giftcardId"))
        reason = None
        if card.state in (CardState.BLOCKED, CardState.DEACTIVATED):
            reason = f"the card is {card.state.lower()}"
        elif (start := card.usable_from) is not None and now < start:
            reason = "the card is not usable yet"
        elif (end := card.expires_at) is not None and now >= end:
            reason = "the card has expired"
        if reason is not None:
            raise self._refuse(principal, CardNotUsableError(reason))
        return card

    # --- operations ----------------------------------------------------------------------

    def create(
        self, principal: Principal, request: TransRequest, idempotency_key: str | None = None
    ) -> Transaction:
        principal.require(PERMISSION_OF[request.trans_type])
        # A retry answers as the first request did, whatever happened to the code or card since:
        # nothing below (input, addressing, budget, PIN) runs for a key already used.
        replayed = self._runner.replay(
            principal, idempotency_key, Operation.ADD_TRANSACTION, request, Transaction
        )
        if replayed is not None:
            return replayed
        self._check_input(request)
        now, started = datetime.now(UTC), time.monotonic()
        try:
            return self._create(principal, request, idempotency_key, now)
        except CardNotUsableError:
            if not principal.is_trusted:
                # Every untrusted refusal takes the floor, counted from this field's start (not the
                # request's: a second refusal in one document, or a body sent slowly, would eat into
                # it), so its timing tells nothing of which check failed. It must outlast the slowest.
                remaining = self._guards.refusal_floor.total_seconds() - (time.monotonic() - started)
                if remaining > 0:
                    time.sleep(remaining)
            raise

    def _check_input(self, request: TransRequest) -> None:
        """Everything about the request that needs no card; what this refuses tells nothing of one."""
        check_text(request.source_id, "sourceId", 128)
        check_text(request.ref_no, "refNo", 128)
        check_text(request.note, "note", 1000, multiline=True)
        if request.pin is not None:
            validate_pin(request.pin, "pin")
        self._check_sign(request.trans_type, check_amount(request.amount))

    def _hide(self, principal: Principal, error: GiftCardError) -> GiftCardError:
        """A refusal that depends on the card (its currency's decimals, its funds, its ceiling), as
        a caller sees it: one that can neither list cards nor look them up by code gets the uniform
        refusal, since the answer would tell it that the code exists. A caller that may look the
        code up learns nothing a lookup would not show."""
        if principal.is_trusted or principal.has(Permission.FIND_BY_CODE):
            return error
        return CardNotUsableError(UNUSABLE)

    def _create(
        self, principal: Principal, request: TransRequest, idempotency_key: str | None, now: datetime
    ) -> Transaction:
        card_id = self._card_addressed(principal, request)
        if card_id is not None:
            return self._write(principal, request, idempotency_key, now, card_id, None, CodeAttempt())
        with code_attempt(self._guards.throttle, principal) as attempt:
            code = self._code_addressed(principal, request)
            answer = self._write(principal, request, idempotency_key, now, code.giftcard_id, code, attempt)
            attempt.hit()  # also when the answer is another request's, replayed after a race
            return answer

    def _write(
        self,
        principal: Principal,
        request: TransRequest,
        idempotency_key: str | None,
        now: datetime,
        card_id: int,
        code: AddressedCode | None,
        attempt: CodeAttempt,
    ) -> Transaction:
        code_id = None if code is None else code.code_id
        prechecked = None if code is None else self._precheck_legacy_pin(principal, code, request.pin)

        def guard(session: Session) -> GiftCardError | None:
            assert code_id is not None
            return self._check_code(session, principal, card_id, code_id, request.pin, now, prechecked)

        def work(session: Session) -> Transaction:
            card = self._usable_card(session, principal, card_id, now)
            attempt.hit()  # the code and its PIN opened a usable card: what follows is no miss
            try:
                amount = parse_amount(request.amount, card.currency)
            except BadUserInputError as exc:  # decimals the card's currency does not have
                raise self._hide(principal, exc) from None
            balance, on_hold = card.balance, store.held(session, card_id, now)
            partial = False
            if amount < 0 and -amount > balance - on_hold:
                if not request.allow_partial or balance - on_hold <= 0:
                    raise self._hide(
                        principal,
                        InsufficientFundsError("amount: more than the available balance", field="amount"),
                    )
                amount, partial = -(balance - on_hold), True
            entry = LedgerEntry(
                giftcard_id=card_id,
                trans_type=request.trans_type.value,
                amount=amount,
                status=TransStatus.COMPLETED.value,
                balance_before=balance,
                balance_after=balance,
                partial=partial,
                source_id=request.source_id,
                ref_no=request.ref_no,
                note=request.note,
                created_by=principal.subject,
                created_at=now,
                code_type=request.code_type.value if code_id is not None and request.code_type else None,
                code_id=code_id,
            )
            if request.authorize_only:
                if amount > 0 and balance + amount > self._ceiling(card.currency):
                    # Refused now rather than at a capture that could never succeed; the capture
                    # checks again, since other credits may land in between.
                    raise self._hide(principal, self._over_ceiling(card.currency))
                entry.status, entry.authorized_amount = TransStatus.AUTHORIZED.value, amount
                # A hold lapses no later than the card's window closes: it could not be captured after.
                card_end = card.expires_at
                entry.hold_expires_at = (
                    now + self._hold_ttl if card_end is None else min(now + self._hold_ttl, card_end)
                )
                if amount < 0:
                    on_hold += -amount
            else:
                entry.settled_at = now
                try:
                    balance = self._apply(session, card, amount, now)
                except LimitExceededError as exc:
                    raise self._hide(principal, exc) from None
                entry.balance_after = balance
            store.add_entry(session, entry)
            return self._view(entry, card.currency, balance, balance - on_hold)

        return self._runner.run(
            principal,
            idempotency_key,
            Operation.ADD_TRANSACTION,
            request,
            work,
            Transaction,
            guard if code_id is not None else None,
        )

    def capture(
        self,
        principal: Principal,
        entry_id: str,
        amount: str | None = None,
        idempotency_key: str | None = None,
    ) -> Transaction:
        number = parse_card_id(entry_id, "id")

        def work(session: Session) -> Transaction:
            entry, card = self._open_entry(session, principal, number)
            now = datetime.now(UTC)
            self._usable_card(session, principal, card.id or 0, now)
            if (expires := entry.hold_expires_at) is not None and expires <= now:
                raise ConflictError("id: the authorization has expired", field="id")
            authorized = entry.amount
            captured = authorized if amount is None else parse_amount(amount, card.currency)
            if captured == 0 or (captured < 0) != (authorized < 0) or abs(captured) > abs(authorized):
                raise BadUserInputError(
                    "amount: same sign as the authorization and no larger than it", field="amount"
                )
            balance = self._apply(session, card, captured, now)
            entry.status, entry.amount, entry.settled_at = TransStatus.COMPLETED.value, captured, now
            entry.balance_before, entry.balance_after = balance - captured, balance
            session.flush()
            return self._view(entry, card.currency, balance, balance - store.held(session, card.id or 0, now))

        return self._runner.run(
            principal,
            idempotency_key,
            Operation.CAPTURE,
            {"id": number, "amount": amount},
            work,
            Transaction,
        )

    def cancel(self, principal: Principal, entry_id: str, idempotency_key: str | None = None) -> Transaction:
        number = parse_card_id(entry_id, "id")

        def work(session: Session) -> Transaction:
            entry, card = self._open_entry(session, principal, number)
            now = datetime.now(UTC)
            entry.status, entry.settled_at = TransStatus.CANCELLED.value, now
            session.flush()
            on_hold = store.held(session, card.id or 0, now)
            return self._view(entry, card.currency, card.balance, card.balance - on_hold)

        return self._runner.run(
            principal,
            idempotency_key,
            Operation.CANCEL,
            {"id": number},
            work,
            Transaction,
        )

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _check_sign(trans_type: TransType, amount: Decimal | int) -> None:
        if amount == 0:
            raise BadUserInputError("amount: must not be zero", field="amount")
        if trans_type is TransType.ADD and amount < 0:
            raise BadUserInputError("amount: an ADD is positive", field="amount")
        if trans_type is TransType.USE and amount > 0:
            raise BadUserInputError("amount: a USE is negative", field="amount")

    def _open_entry(
        self, session: Session, principal: Principal, number: int
    ) -> tuple[LedgerEntry, GiftCard]:
        """The AUTHORIZED entry and its card, locked (card first, as every writer does)."""
        if principal.is_anonymous:
            raise UnauthenticatedError("a bearer token is required")
        peek = session.get(LedgerEntry, number)
        # Without ListGiftCards a caller sees only the transactions it created.
        if peek is None or not (principal.is_trusted or peek.created_by == principal.subject):
            raise NotFoundError("id: no such transaction", field="id")
        principal.require(PERMISSION_OF[TransType(peek.trans_type)])
        card = card_store.card_for_update(session, peek.giftcard_id)
        entry = store.entry_for_update(session, number)
        assert card is not None and entry is not None
        session.refresh(entry)
        if entry.status != TransStatus.AUTHORIZED:
            raise ConflictError(f"id: the transaction is {entry.status}, not AUTHORIZED", field="id")
        return entry, card

    def _ceiling(self, currency: str) -> int:
        """The most a card in ``currency`` may hold, in minor units."""
        return minor_units(self._max_balance, currency)

    def _over_ceiling(self, currency: str) -> LimitExceededError:
        most = format_amount(self._ceiling(currency), currency)
        return LimitExceededError(
            f"amount: a card may hold at most {most} {currency}", field="amount", limit="maxBalance"
        )

    def _apply(self, session: Session, card: GiftCard, amount: int, now: datetime) -> int:
        balance = store.change_balance(session, card.id or 0, amount, now, self._ceiling(card.currency))
        if balance is None:
            if amount > 0:  # only the ceiling refuses a credit
                raise self._over_ceiling(card.currency)
            # Debits are checked against the locked balance first; the condition keeps this impossible.
            raise InsufficientFundsError("amount: more than the balance", field="amount")
        session.refresh(card)
        if amount > 0 and card.state == CardState.PENDING:
            card.state = CardState.ACTIVE.value  # PENDING means never funded: any first credit ends it
        return balance

    @staticmethod
    def _view(entry: LedgerEntry, currency: str, balance: int, available: int) -> Transaction:
        row = {**entry.model_dump(), "currency": currency}
        return store.transaction_from_row(row, balance=balance, available_balance=available)
