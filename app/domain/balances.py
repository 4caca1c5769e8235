"""A card's money rules, applied under its row lock: a debit takes no more than is available (the
balance less open debit holds; a partial one takes what there is), a credit never takes the balance
over the ceiling (the server's, or the card's program's if lower), a load never passes its program's
daily limit, and a hold lapses after its time, or when the card's window closes if sooner. A card
whose program counts its expiry from its last activity moves it with every completed transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.domain.addressing import UNUSABLE
from app.domain.money import format_amount, minor_units, parse_amount
from app.domain.program_rules import (
    balance_ceiling,
    check_load,
    check_value,
    daily_load_refused,
    expires_at,
    expiry_moves_with_activity,
)
from app.entities import Program
from app.enums import CardState, TransStatus, TransType
from app.errors import (
    BadUserInputError,
    CardNotUsableError,
    GiftCardError,
    InsufficientFundsError,
    LimitExceededError,
)
from app.models import GiftCard
from app.policy import Permission, Principal
from app.store import ledger as store
from app.store import programs
from app.store.money import LockedCard
from app.store.moves import BalanceChange

# A card as the rules read it: locked by the money path, or an ORM row (issuing, capture).
Card = GiftCard | LockedCard


def hide(principal: Principal, error: GiftCardError) -> GiftCardError:
    """A refusal that depends on the card (decimals, funds, ceiling) as the caller sees it: uniform
    unless it may list cards or look codes up, since the answer would tell that the code exists."""
    if principal.is_trusted or principal.has(Permission.FIND_BY_CODE):
        return error
    return CardNotUsableError(UNUSABLE)


class BalanceRules:
    """The balance ceiling and the hold time, and the rules that use them."""

    def __init__(self, max_balance: int, hold_ttl: timedelta) -> None:
        self._max_balance = max_balance  # whole major units of each card's own currency
        self._hold_ttl = hold_ttl

    def amount(
        self, principal: Principal, card: LockedCard, text: str, allow_partial: bool
    ) -> tuple[int, bool, int]:
        """``text`` in the card's currency (a debit cut to what is available if partial is allowed),
        whether it was cut, and what the card's open debit holds hold."""
        try:
            amount = parse_amount(text, card.currency)
        except BadUserInputError as exc:  # decimals the card's currency does not have
            raise hide(principal, exc) from None
        on_hold = card.held
        available = card.balance - on_hold
        if amount >= 0 or -amount <= available:
            return amount, False, on_hold
        if not allow_partial or available <= 0:
            funds = InsufficientFundsError("amount: more than the available balance", field="amount")
            raise hide(principal, funds)
        return -available, True, on_hold

    def program_of(self, session: Session, card: Card) -> Program | None:
        """The card's program (share-locked: its rules stay as read until the card's writes end)."""
        if card.program_id is None:
            return None
        return programs.find_program(session, card.program_id, None, share=True)

    def change(
        self, session: Session, principal: Principal, card: Card, trans_type: TransType, amount: int
    ) -> Change:
        """What the balance change of a transaction is, on the locked card: its program and whether
        it is a load (an ADD); a load the program does not take (program_rules.check_load) is refused."""
        program = self.program_of(session, card)
        load = trans_type is TransType.ADD and amount > 0
        if load and program is not None:
            try:
                check_load(program, amount, issued=card.state != CardState.PENDING)
            except LimitExceededError as exc:
                raise hide(principal, exc) from None
        return Change(program, load)

    def hold(
        self, principal: Principal, card: Card, amount: int, now: datetime, program: Program | None = None
    ) -> dict[str, Any]:
        """An authorization's ledger fields: ``amount`` held until the hold lapses."""
        if amount > 0 and card.balance + amount > self._ceiling(card.currency, program):
            # Refused now rather than at a capture that could never succeed; the capture
            # checks again, since other credits may land in between.
            raise hide(principal, self._over_ceiling(card.currency, program))
        # A hold lapses no later than the card's window closes: it could not be captured after.
        until = now + self._hold_ttl
        if card.expires_at is not None:
            until = min(until, card.expires_at)
        return {"status": TransStatus.AUTHORIZED.value, "authorized_amount": amount, "hold_expires_at": until}

    def apply(self, session: Session, card: Card, amount: int, now: datetime, change: Change) -> int:
        """The card's new balance, ``amount`` added (a credit also ends PENDING), in one conditional
        update that also keeps a load within its program's daily limit and moves an expiry counted
        from the last activity."""
        balance = store.change_balance(session, *self.balance_change(card, amount, now, change))
        if balance is None:
            raise self.refusal(card, amount, change)
        return balance

    def balance_change(self, card: Card, amount: int, now: datetime, change: Change) -> BalanceChange:
        """The conditional update :meth:`apply` runs, for a caller that runs it with more."""
        program = change.program
        values: dict[str, Any] = {}
        conditions = []
        if change.load:  # every load is counted; a program's limit, when it sets one, caps the day's
            limit = None if program is None else program.max_daily_load
            values, within = programs.daily_load(amount, now.date(), limit)
            conditions.append(within)
        if program is not None and expiry_moves_with_activity(program):
            values["expires_at"] = expires_at(program, now)
        ceiling = self._ceiling(card.currency, program)
        return BalanceChange(card.id or 0, amount, now, ceiling, values, conditions)

    def refusal(self, card: Card, amount: int, change: Change) -> GiftCardError:
        """Why the conditional update refused ``amount`` on the locked ``card``."""
        program = change.program
        if amount <= 0:
            # Debits are checked against the locked balance first; the condition keeps this impossible.
            return InsufficientFundsError("amount: more than the balance", field="amount")
        if card.balance + amount > self._ceiling(card.currency, program) or program is None:
            return self._over_ceiling(card.currency, program, change.field)
        return daily_load_refused(program, change.field)

    def check_issue_value(
        self, amount: int, currency: str, field: str, program: Program | None = None
    ) -> None:
        """Refuses the value a new card is issued with unless it is positive, within the ceiling and
        one its program issues."""
        if amount <= 0:
            raise BadUserInputError(f"{field}: must be greater than zero", field=field)
        if amount > self._ceiling(currency, program):
            raise self._over_ceiling(currency, program, field)
        if program is not None:
            check_value(program, amount, field)

    def _ceiling(self, currency: str, program: Program | None) -> int:
        """The most a card in ``currency`` (of ``program``) may hold, in minor units."""
        return balance_ceiling(program, minor_units(self._max_balance, currency))

    def _over_ceiling(
        self, currency: str, program: Program | None, field: str = "amount"
    ) -> LimitExceededError:
        most = format_amount(self._ceiling(currency, program), currency)
        return LimitExceededError(
            f"{field}: a card may hold at most {most} {currency}", field=field, limit="max_balance"
        )


@dataclass(frozen=True, slots=True)
class Change:
    """What a balance change is, beside its amount: the card's program (its ceiling, daily limit and
    expiry), whether it is a load (an ADD, counted against the daily limit), and the field that
    names the amount in a refusal."""

    program: Program | None = None
    load: bool = False
    field: str = "amount"
