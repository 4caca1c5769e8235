"""Card states: PENDING (never funded) → ACTIVE, BLOCKED (reversible), DEACTIVATED (for good).

Each change locks the card, records an event, and is idempotent. Deactivation is the delete (the card
and its history stay) and cancels open holds; unblocking returns a funded card to ACTIVE, else PENDING.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from app.domain.cards import card_view, lock_card
from app.domain.identifiers import check_text, parse_card_id
from app.domain.masking import CodeMasking, ShownCard
from app.domain.mutations import Mutation, MutationRunner
from app.domain.states import TRANSITIONS, transition
from app.enums import Operation
from app.policy import Principal


class Lifecycle:
    """Blocking, unblocking and deactivating cards."""

    def __init__(self, runner: MutationRunner, masking: CodeMasking) -> None:
        self._runner = runner
        self._masking = masking

    def change(
        self, principal: Principal, operation: Operation, card_id: str, reason: str | None, key: str | None
    ) -> ShownCard:
        """Run a state change (a key of TRANSITIONS); the card as the caller may see it."""
        permission = TRANSITIONS[operation][0]
        principal.require(permission)
        number = parse_card_id(card_id)
        check_text(reason, "reason", 255)

        def work(session: Session) -> ShownCard:
            card = lock_card(session, principal, number)
            transition(session, card, operation, principal.subject, datetime.now(UTC), reason)
            return card_view(session, self._masking, principal, number)

        request = {"id": card_id, "reason": reason}
        return self._runner.run(principal, Mutation(operation, request, ShownCard, key), work)
