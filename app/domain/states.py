"""The rules of card states: PENDING (never funded) → ACTIVE, BLOCKED (reversible), DEACTIVATED
(for good). One transition applied to a locked card, by giftcardBlock, giftcardUnblock and
giftcardDeactivate, and by giftcardEdit's ``enabled``: it records its event and is idempotent (a card
already in the target state changes nothing and records nothing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from app.enums import CardState, Operation
from app.errors import ConflictError
from app.models import GiftCard
from app.policy import Permission
from app.store import cards as store


def _next_state_block(session: Session, card: GiftCard) -> CardState | None:
    if card.state == CardState.DEACTIVATED:
        raise ConflictError("id: the card is deactivated and cannot be blocked", field="id")
    return None if card.state == CardState.BLOCKED else CardState.BLOCKED


def _next_state_unblock(session: Session, card: GiftCard) -> CardState | None:
    if card.state == CardState.DEACTIVATED:
        raise ConflictError("id: the card is deactivated and cannot be unblocked", field="id")
    if card.state != CardState.BLOCKED:
        return None
    assert card.id is not None
    return CardState.ACTIVE if store.has_completed_entries(session, card.id) else CardState.PENDING


def _next_state_deactivate(session: Session, card: GiftCard) -> CardState | None:
    return None if card.state == CardState.DEACTIVATED else CardState.DEACTIVATED


TRANSITIONS: dict[Operation, tuple[Permission, str, Callable[[Session, GiftCard], CardState | None]]] = {
    Operation.BLOCK_CARD: (Permission.BLOCK_GIFT_CARD, "BLOCKED", _next_state_block),
    Operation.UNBLOCK_CARD: (Permission.BLOCK_GIFT_CARD, "UNBLOCKED", _next_state_unblock),
    Operation.DEACTIVATE_CARD: (Permission.DEACTIVATE_GIFT_CARD, "DEACTIVATED", _next_state_deactivate),
}


def transition(
    session: Session,
    card: GiftCard,
    operation: Operation,
    actor: str | None,
    now: datetime,
    reason: str | None,
) -> bool:
    """Move the locked ``card`` as ``operation`` (a key of TRANSITIONS) says, recording its event and
    who changed it; False when it already was in that state (nothing written)."""
    _, event, next_state = TRANSITIONS[operation]
    target = next_state(session, card)
    if target is None:
        return False
    assert card.id is not None
    card.state, card.updated_at, card.updated_by = target.value, now, actor
    store.add_event(session, card, event, actor, now, reason)
    # A retired card holds nothing: available = balance.
    if target is CardState.DEACTIVATED and (cut := store.cancel_open_holds(session, card.id, now)):
        store.add_event(session, card, "HOLDS_CANCELLED", actor, now, str(cut))
    session.flush()
    return True
