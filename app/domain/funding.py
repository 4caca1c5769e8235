"""Issuing a card with value: its first ADD, written with the card itself in the creation's unit of
work, so a refusal leaves neither. The value is checked before any write; the balance changes by
the same conditional update as any credit (the ceiling holds, PENDING becomes ACTIVE)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.domain.balances import BalanceRules, Change
from app.domain.money import parse_amount
from app.entities import Program
from app.enums import TransStatus, TransType
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
            "created_by": card.created_by,  # the caller that issues it
            "created_at": now,
            "settled_at": now,
        },
    )
