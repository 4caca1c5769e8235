"""Card states: PENDING (never funded) → ACTIVE, BLOCKED (reversible), DEACTIVATED (for good).

Each change locks the card, records an event, and is idempotent. Deactivation is the delete (the card
and its history stay) and cancels open holds; unblocking returns a funded card to ACTIVE, else PENDING.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlmodel import Session

from app.domain.cards import card_view, lock_card
from app.domain.identifiers import check_text, parse_card_id
from app.domain.masking import CodeMasking, ShownCard
from app.domain.mutations import Mutation, MutationRunner
from app.enums import CardState, Operation
from app.errors import ConflictError
from app.models import GiftCard
from app.policy import Permission, Principal
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


_TRANSITIONS: dict[Operation, tuple[Permission, str, Callable[[Session, GiftCard], CardState | None]]] = {
    Operation.BLOCK_CARD: (Permission.BLOCK_GIFT_CARD, "BLOCKED", _next_state_block),
    Operation.UNBLOCK_CARD: (Permission.BLOCK_GIFT_CARD, "UNBLOCKED", _next_state_unblock),
    Operation.DEACTIVATE_CARD: (Permission.DEACTIVATE_GIFT_CARD, "DEACTIVATED", _next_state_deactivate),
}


class Lifecycle:
    """Blocking, unblocking and deactivating cards."""

    def __init__(self, runner: MutationRunner, masking: CodeMasking) -> None:
        self._runner = runner
        self._masking = masking

    def change(
        self, principal: Principal, operation: Operation, card_id: str, reason: str | None, key: str | None
    ) -> ShownCard:
        """Run a state change (a key of _TRANSITIONS); the card as the caller may see it."""
        permission, event, next_state = _TRANSITIONS[operation]
        principal.require(permission)
        number = parse_card_id(card_id)
        check_text(reason, "reason", 255)

        def work(session: Session) -> ShownCard:
            card = lock_card(session, principal, number)
            target = next_state(session, card)
            if target is not None:
                now = datetime.now(UTC)
                card.state, card.updated_at = target.value, now
                store.add_event(session, card, event, principal.subject, now, reason)
                # A retired card holds nothing: available = balance.
                if target is CardState.DEACTIVATED and (cut := store.cancel_open_holds(session, number, now)):
                    store.add_event(session, card, "HOLDS_CANCELLED", principal.subject, now, str(cut))
                session.flush()
            return card_view(session, self._masking, principal, number)

        request = {"id": card_id, "reason": reason}
        return self._runner.run(principal, Mutation(operation, request, ShownCard, key), work)
