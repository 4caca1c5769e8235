"""Money movements: immediate transactions, authorize → capture / cancel, and the card rules.

Every balance change is one conditional update of the card row and its ledger row, in one database
transaction holding the card's row lock (PostgreSQL) or the write lock (SQLite); a check constraint
backs the floor. What a request addresses is found in :mod:`app.domain.addressing` and the money rules
are in :mod:`app.domain.balances`; this module runs them in order, and makes every untrusted refusal
take at least the refusal floor. On PostgreSQL a plain debit is tried first as one statement that
does all of it in the server (:mod:`app.domain.plain_debits`); what it leaves comes here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row
from sqlmodel import Session

from app.domain.addressing import Addressing, Guards
from app.domain.attempts import CodeAttempt, code_attempt
from app.domain.audit import AuditTarget
from app.domain.authorizations import Authorization, located, target_of, with_auth_code, write_entry
from app.domain.balances import BalanceRules, Change, hide
from app.domain.codes import validate_code, validate_pin
from app.domain.identifiers import check_location_id, check_text, parse_card_id
from app.domain.money import check_amount, check_sign, parse_amount
from app.domain.mutations import Mutation, MutationRunner, Work
from app.domain.payment_tokens import PaymentTokens
from app.domain.plain_debits import PlainDebits
from app.domain.scoping import narrow
from app.domain.trans_requests import TransRequest
from app.entities import Transaction
from app.enums import CodeType, Operation, TransStatus, TransType
from app.errors import (
    BadUserInputError,
    ConflictError,
    LimitExceededError,
    NotFoundError,
    UnauthenticatedError,
)
from app.models import GiftCard
from app.policy import Permission, Policy, Principal
from app.store import cards as card_store
from app.store import ledger as store
from app.store import moves
from app.store.money import LockedCard

Entry = dict[str, Any]  # a ledger row's values by column
PERMISSION_OF = {
    TransType.ADD: Permission.TRANS_ADD,
    TransType.USE: Permission.TRANS_USE,
    TransType.ADJUST: Permission.TRANS_ADJUST,
    TransType.EXTERNAL: Permission.TRANS_EXTERNAL,
    TransType.IMPORT: Permission.TRANS_IMPORT,
}


@dataclass(frozen=True)
class Ledger:
    """Creates, captures and cancels transactions."""

    runner: MutationRunner
    addressing: Addressing
    rules: BalanceRules
    policy: Policy
    guards: Guards
    tokens: PaymentTokens
    plain: PlainDebits | None = None  # on PostgreSQL: a plain debit in one statement, tried first

    # --- giftcardTransAdd ------------------------------------------------------------------

    def create(self, principal: Principal, request: TransRequest, key: str | None = None) -> Transaction:
        principal.require(PERMISSION_OF[request.trans_type])
        principal = narrow(principal, request.store_id)
        # A retry answers as the first request did, whatever happened to the code or card since:
        # nothing below (input, addressing, budget, PIN) runs for a key already used.
        mutation = Mutation(Operation.ADD_TRANSACTION, request, Transaction, key)
        replayed: Transaction | None = self.runner.replay(principal, mutation)
        if replayed is not None:
            return replayed
        self._check_input(request)
        with self.guards.floored(principal):  # every untrusted refusal takes the refusal floor
            return self._create(principal, request, mutation, datetime.now(UTC))

    def _check_input(self, request: TransRequest) -> None:
        """Everything about the request that needs no card; what this refuses tells nothing of one."""
        check_text(request.source_id, "source_id", 128)
        check_text(request.ref_no, "ref_no", 128)
        check_text(request.note, "note", 1000, multiline=True)
        check_location_id(request.location_id)
        if request.pin is not None:
            validate_pin(request.pin, "pin")
        check_sign(request.trans_type, check_amount(request.amount))

    def _card_addressed(self, principal: Principal, request: TransRequest) -> int | None:
        """The card id a request by ``giftcardId`` addresses; None by code (checked, not looked up)."""
        by_code = request.code is not None or request.code_type is not None
        if by_code == (request.giftcard_id is not None):
            raise BadUserInputError("trans: give code_type and code, giftcard_id, or token", field="trans")
        if request.giftcard_id is not None:
            principal.require(Permission.LIST_GIFT_CARDS)
            if request.pin is not None:
                raise BadUserInputError("pin: only allowed with a code", field="pin")
            return parse_card_id(request.giftcard_id, "giftcard_id")
        if request.code is None or request.code_type is None:
            missing = "code" if request.code is None else "code_type"
            raise BadUserInputError(f"{missing}: give both code_type and code", field=missing)
        self.policy.require_code_type(principal, request.code_type, name_type=False)
        validate_code(request.code, "code")
        return None

    def _create(
        self, principal: Principal, request: TransRequest, mutation: Mutation, now: datetime
    ) -> Transaction:
        if request.token is not None:  # spent as app.domain.payment_tokens says

            def work_for(code_type: CodeType, card_id: int, code_id: int) -> Work[Transaction]:
                addressed = replace(request, code_type=code_type)  # the ledger row's code type
                return self._work(principal, addressed, now, card_id, code_id, CodeAttempt())

            return self.tokens.spend(principal, request, mutation, now, work_for)
        card_id = self._card_addressed(principal, request)
        if card_id is not None:
            work = self._work(principal, request, now, card_id, None, CodeAttempt())
            return self.runner.run(principal, mutation, work, batch=card_id)
        assert request.code is not None and request.code_type is not None  # checked just above
        addressed = (request.code_type, request.code)
        with code_attempt(self.guards.throttle, principal) as attempt:
            # A PIN is checked against the code as read: with one, the code is read first
            code = None if request.pin is None else self.addressing.live_code(principal, *addressed)
            answer = None if self.plain is None else self.plain.debit(principal, request, mutation, now, code)
            if answer is None:  # not plain: nothing written, the full path answers
                code = code or self.addressing.live_code(principal, *addressed)
                guard = self.addressing.code_guard(principal, code, request.pin, now)
                work = self._work(principal, request, now, code.giftcard_id, code.code_id, attempt)
                answer = self.runner.run(principal, mutation, work, guard, batch=code.giftcard_id)
            attempt.hit()  # also when the answer is another request's, replayed after a race
            return answer

    def _work(
        self,
        principal: Principal,
        request: TransRequest,
        now: datetime,
        card_id: int,
        code_id: int | None,
        attempt: CodeAttempt,
    ) -> Work[Transaction]:
        """The writes after the code's guard: card checked, amount ruled on, hold or balance change, row."""

        def work(session: Session) -> Transaction:
            card = self.addressing.usable_card(session, principal, card_id, now)
            attempt.hit()  # the code and its PIN opened a usable card: what follows is no miss
            amount, partial, on_hold = self.rules.amount(
                principal, card, request.amount, request.allow_partial
            )
            entry = _new_entry(principal, request, now, code_id)
            entry.update(giftcard_id=card_id, store_id=card.store_id, amount=amount, partial=partial)
            entry.update(balance_before=card.balance)
            change = self.rules.change(session, principal, card, request.trans_type, amount)
            if not request.authorize_only:
                entry.update(status=TransStatus.COMPLETED.value, settled_at=now)
                moves.last_write(session, request.token is None and (amount < 0 or request.pin is None))
                row = self._move(session, principal, card, entry, change)
                return _answer(row, card.currency, row["balance_after"], row["balance_after"] - on_hold)
            entry.update(self.rules.hold(principal, card, amount, now, change.program))
            if amount < 0:
                on_hold += -amount
            authorized, auth_code = write_entry(session, {**entry, "balance_after": card.balance}, True)
            return with_auth_code(
                _answer(authorized, card.currency, card.balance, card.balance - on_hold), auth_code
            )

        return work

    def _move(
        self, session: Session, principal: Principal, card: LockedCard, entry: dict[str, Any], change: Change
    ) -> dict[str, Any]:
        """A completed transaction's balance change with its ledger and audit rows (app.store.moves)."""
        amount, now, target = entry["amount"], entry["created_at"], AuditTarget(card.id, card.store_id)
        records = self.runner.audit_records(principal, Operation.ADD_TRANSACTION, target)
        row = moves.move(session, self.rules.balance_change(card, amount, now, change), entry, records)
        if row is None:
            refusal = self.rules.refusal(card, amount, change)
            raise hide(principal, refusal) if isinstance(refusal, LimitExceededError) else refusal
        return row

    # --- giftcardTransCapture, giftcardTransCancel -----------------------------------------

    def capture(
        self,
        principal: Principal,
        entry_id: str | Authorization,
        amount: str | None = None,
        key: str | None = None,
        location_id: str | None = None,
    ) -> Transaction:
        """Settle an authorization; ``location_id``, when given, replaces the one it was authorized at."""
        target = target_of(entry_id)
        check_location_id(location_id)

        def work(session: Session) -> Transaction:
            entry, card = self._open_entry(session, principal, target)
            now = datetime.now(UTC)
            self.addressing.check_usable(principal, card, now)  # the card _open_entry locked
            if (expires := entry.hold_expires_at) is not None and expires <= now:
                raise ConflictError(f"{target.field}: the authorization has expired", field=target.field)
            authorized = entry.amount
            captured = authorized if amount is None else parse_amount(amount, card.currency)
            if captured == 0 or (captured < 0) != (authorized < 0) or abs(captured) > abs(authorized):
                raise BadUserInputError(
                    "amount: same sign as the authorization and no larger than it", field="amount"
                )
            change = self.rules.change(session, principal, card, TransType(entry.trans_type), captured)
            balance = self.rules.apply(session, card, captured, now, change)
            settled = {"status": TransStatus.COMPLETED.value, "amount": captured, "settled_at": now}
            settled.update(located(location_id))
            row = store.settle_entry(
                session, entry.id, {**settled, "balance_before": balance - captured, "balance_after": balance}
            )
            return _answer(row, card.currency, balance, balance - store.held(session, card.id or 0, now))

        request = {**target.request, "amount": amount, **located(location_id)}
        return self.runner.run(principal, Mutation(Operation.CAPTURE, request, Transaction, key), work)

    def cancel(
        self,
        principal: Principal,
        entry_id: str | Authorization,
        key: str | None = None,
        location_id: str | None = None,
    ) -> Transaction:
        """Release an authorization; ``location_id``, when given, replaces the one it was authorized at."""
        target = target_of(entry_id)
        check_location_id(location_id)

        def work(session: Session) -> Transaction:
            entry, card = self._open_entry(session, principal, target)
            now = datetime.now(UTC)
            cancelled = {"status": TransStatus.CANCELLED.value, "settled_at": now, **located(location_id)}
            row = store.settle_entry(session, entry.id, cancelled)
            on_hold = store.held(session, card.id or 0, now)
            return _answer(row, card.currency, card.balance, card.balance - on_hold)

        request = {**target.request, **located(location_id)}
        return self.runner.run(principal, Mutation(Operation.CANCEL, request, Transaction, key), work)

    def _open_entry(
        self, session: Session, principal: Principal, target: Authorization
    ) -> tuple[Row[Any], GiftCard]:
        """The AUTHORIZED entry and its card, locked (card first, as every writer does)."""
        if principal.is_anonymous:
            raise UnauthenticatedError("a bearer token is required")
        peek, field = target.peek(session), target.field
        stores = principal.store_ids()
        # Without ListGiftCards a caller sees only the transactions it created; none of another store.
        if (
            peek is None
            or (stores is not None and peek.store_id not in stores)
            or not (principal.is_trusted or peek.created_by == principal.subject)
        ):
            raise NotFoundError(f"{field}: no such transaction", field=field)
        principal.require(PERMISSION_OF[TransType(peek.trans_type)])
        card = card_store.card_for_update(session, peek.giftcard_id, stores)
        entry = store.entry(session, peek.id, lock=True)
        assert card is not None and entry is not None
        if entry.status != TransStatus.AUTHORIZED:
            raise ConflictError(f"{field}: the transaction is {entry.status}, not AUTHORIZED", field=field)
        return entry, card


def _new_entry(principal: Principal, request: TransRequest, now: datetime, code_id: int | None) -> Entry:
    """The ledger row's fields the request and its caller give."""
    return {
        "trans_type": request.trans_type.value,
        **{name: getattr(request, name) for name in ("source_id", "ref_no", "note", "location_id")},
        "created_by": principal.subject,
        "created_at": now,
        "code_type": request.code_type.value if code_id is not None and request.code_type else None,
        "code_id": code_id,
    }


def _answer(row: Row[Any] | dict[str, Any], currency: str, balance: int, available: int) -> Transaction:
    """The Transaction of a ledger row just written, with its card's balances now."""
    values = {**(row._mapping if isinstance(row, Row) else row), "currency": currency}
    return store.transaction_from_row(values, balance=balance, available_balance=available)
