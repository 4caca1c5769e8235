"""Issuing a card: the terms it is issued on (its program's currency, a value the program issues,
its expiry), and with a value, its first ADD, written with the card itself in the creation's unit
of work, so a refusal leaves neither. The balance changes by the same conditional update as any
credit (the ceiling and daily limit hold, PENDING becomes ACTIVE)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from app.domain.balances import BalanceRules, Change
from app.domain.card_requests import NewCard
from app.domain.money import parse_amount
from app.domain.program_rules import expires_at
from app.entities import Program
from app.enums import TransStatus, TransType
from app.errors import BadUserInputError
from app.models import GiftCard
from app.store import ledger as store

FIELD = "initial_value"


def check_initial_value(rules: BalanceRules, text: str, currency: str, program: Program | None) -> int:
    """The value a new card is to be issued with, in minor units: one its program issues (the
    caller's GiftCardTransAdd is checked before)."""
    amount = parse_amount(text, currency, FIELD)
    rules.check_issue_value(amount, currency, FIELD, program)
    return amount


def fund_new_card(
    session: Session, rules: BalanceRules, card: GiftCard, amount: int, now: datetime, program: Program | None
) -> None:
    """Credit the card just inserted with ``amount`` (its first load of the day), and write its ADD
    ledger row."""
    balance = rules.apply(session, card, amount, now, Change(program, load=True, field=FIELD))
    store.add_entry(
        session,
        {
            "giftcard_id": card.id,
            "store_id": card.store_id,
            "trans_type": TransType.ADD.value,
            "status": TransStatus.COMPLETED.value,
            "amount": amount,
            "balance_before": balance - amount,
            "balance_after": balance,
            "source_id": card.source_id,
            "location_id": card.location_id,
            "created_by": card.created_by,  # the caller that issues it
            "created_at": now,
            "settled_at": now,
        },
    )


def card_currency(program: Program | None, given: str | None, default: str) -> str:
    """A new card's currency: its program's (another one given is refused), else the one given,
    else the server's default."""
    if program is None:
        return given or default
    if given not in (None, program.currency):
        raise BadUserInputError(
            f"currency: program {program.code} issues {program.currency} cards", field="currency"
        )
    return program.currency


def check_min_expiry(program: Program, expires_at: datetime, now: datetime, min_expiry: timedelta) -> None:
    """Refuse an ``expires_at`` given to a card of ``program`` sooner than the legal minimum
    (GIFTCARDS_MIN_EXPIRY_DAYS) from ``now``: on issue and on edit alike."""
    if expires_at < now + min_expiry:
        earliest = (now + min_expiry).date().isoformat()
        raise BadUserInputError(
            f"expires_at: a card of program {program.code} may not expire before {earliest} "
            "(GIFTCARDS_MIN_EXPIRY_DAYS)",
            field="expires_at",
        )


def issue_terms(
    request: NewCard,
    program: Program | None,
    currency: str,
    rules: BalanceRules,
    now: datetime,
    min_expiry: timedelta,
) -> dict[str, Any]:
    """The new card's currency, initial value and details: a value its program issues, and the
    program's expiry unless one is given, which may then not come before the legal minimum."""
    value = request.initial_value
    amount = None if value is None else check_initial_value(rules, value, currency, program)
    details = request.details
    if program is not None and details.expires_at is None:
        details = dataclasses.replace(details, expires_at=expires_at(program, now))
    elif program is not None and details.expires_at is not None:
        check_min_expiry(program, details.expires_at, now, min_expiry)
    if amount is not None and details.expires_at is not None and details.expires_at <= now:
        # no debit could ever spend it (Addressing refuses an expired card)
        raise BadUserInputError(
            "expires_at: a card issued with a value must not have expired", field="expires_at"
        )
    return {"currency": currency, "initial_value": amount, **dataclasses.asdict(details)}
