"""A card's money rules, applied under its row lock: a debit takes no more than is available (the
balance less open debit holds; a partial one takes what there is), a credit never takes the balance
over the ceiling, and a hold lapses after its time, or when the card's window closes if sooner."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.domain.addressing import UNUSABLE
from app.domain.money import format_amount, minor_units, parse_amount
from app.enums import TransStatus
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
        self,
        session: Session,
        principal: Principal,
        card: GiftCard,
        text: str,
        allow_partial: bool,
        now: datetime,
    ) -> tuple[int, bool, int]:
        """``text`` in the card's currency (a debit cut to what is available if partial is allowed),
        whether it was cut, and what the card's open debit holds hold."""
        try:
            amount = parse_amount(text, card.currency)
        except BadUserInputError as exc:  # decimals the card's currency does not have
            raise hide(principal, exc) from None
        on_hold = store.held(session, card.id or 0, now)
        available = card.balance - on_hold
        if amount >= 0 or -amount <= available:
            return amount, False, on_hold
        if not allow_partial or available <= 0:
            funds = InsufficientFundsError("amount: more than the available balance", field="amount")
            raise hide(principal, funds)
        return -available, True, on_hold

    def hold(self, principal: Principal, card: GiftCard, amount: int, now: datetime) -> dict[str, Any]:
        """An authorization's ledger fields: ``amount`` held until the hold lapses."""
        if amount > 0 and card.balance + amount > self._ceiling(card.currency):
            # Refused now rather than at a capture that could never succeed; the capture
            # checks again, since other credits may land in between.
            raise hide(principal, self._over_ceiling(card.currency))
        # A hold lapses no later than the card's window closes: it could not be captured after.
        until = now + self._hold_ttl
        if card.expires_at is not None:
            until = min(until, card.expires_at)
        return {"status": TransStatus.AUTHORIZED.value, "authorized_amount": amount, "hold_expires_at": until}

    def apply(
        self, session: Session, card: GiftCard, amount: int, now: datetime, field: str = "amount"
    ) -> int:
        """The card's new balance, ``amount`` added (a credit also ends PENDING); ``field`` names
        the amount in a refusal."""
        balance = store.change_balance(session, card.id or 0, amount, now, self._ceiling(card.currency))
        if balance is None:
            if amount > 0:  # only the ceiling refuses a credit
                raise self._over_ceiling(card.currency, field)
            # Debits are checked against the locked balance first; the condition keeps this impossible.
            raise InsufficientFundsError("amount: more than the balance", field="amount")
        return balance

    def check_issue_value(self, amount: int, currency: str, field: str) -> None:
        """Refuses the value a new card is issued with unless it is positive and within the ceiling."""
        if amount <= 0:
            raise BadUserInputError(f"{field}: must be greater than zero", field=field)
        if amount > self._ceiling(currency):
            raise self._over_ceiling(currency, field)

    def _ceiling(self, currency: str) -> int:
        """The most a card in ``currency`` may hold, in minor units."""
        return minor_units(self._max_balance, currency)

    def _over_ceiling(self, currency: str, field: str = "amount") -> LimitExceededError:
        most = format_amount(self._ceiling(currency), currency)
        return LimitExceededError(
            f"{field}: a card may hold at most {most} {currency}", field=field, limit="max_balance"
        )
