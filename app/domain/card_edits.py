"""The steps of one giftcardEdit on the locked card and its live codes; each records its event in
the card's history. The edit runs them in one transaction: a refusal at any step writes nothing.
The card's ``updated_at`` and ``updated_by`` move only when a step changed something."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from sqlmodel import Session

from app.domain.card_requests import CardDetails, PlannedCode
from app.domain.codes import SealedCode
from app.domain.funding import check_min_expiry
from app.domain.pins import PinKeys
from app.domain.states import transition
from app.enums import CodeType, Operation
from app.errors import BadUserInputError
from app.models import GiftCard
from app.store import cards as store
from app.store import programs as program_store

# The giftcardEdit field that asks to revoke a code of each type.
_REVOKE_FIELDS = {
    CodeType.PHYSICAL: "revoke_physical_code",
    CodeType.EXTERNAL: "revoke_external_code",
    CodeType.PERSONAL: "revoke_personal_code",
    CodeType.SHORT_PERSONAL: "revoke_short_personal_code",
}

# A code to add, and its seal.
Sealed = tuple[PlannedCode, SealedCode]


class EditSteps:
    """The steps of one edit on the locked card and its live codes; each records its events."""

    def __init__(self, session: Session, card: GiftCard, actor: str | None, now: datetime) -> None:
        assert card.id is not None
        self.session, self.card, self.actor, self.now = session, card, actor, now
        self.card_id = card.id
        self.touched = False  # a step changed the card
        self.live = {CodeType(code.code_type): code for code in store.live_codes(session, card.id)}

    def record(self, event: str, detail: str | None = None) -> None:
        store.add_event(self.session, self.card, event, self.actor, self.now, detail)
        self.touched = True

    def set_enabled(self, enabled: bool | None) -> None:
        """Unblock (True) or block (False) as giftcardUnblock and giftcardBlock do: the same rules
        and events; a card already in that state is left as it is."""
        if enabled is not None:
            operation = Operation.UNBLOCK_CARD if enabled else Operation.BLOCK_CARD
            self.touched |= transition(self.session, self.card, operation, self.actor, self.now, None)

    def link_member(self, member_id: str | None) -> None:
        if member_id is None or member_id == self.card.member_id:
            return
        if self.card.member_id is not None:
            raise BadUserInputError(
                "member_id: the card belongs to another member; unlink it first", field="member_id"
            )
        self.card.member_id = member_id
        self.record("MEMBER_LINKED", member_id)

    def check_revocable(self, revoke: frozenset[CodeType]) -> None:
        for code_type in revoke:
            if code_type not in self.live:
                name = _REVOKE_FIELDS[code_type]
                raise BadUserInputError(f"{name}: the card has no live {code_type.value} code", field=name)

    def unlink_member(self) -> None:
        """Unlink the member (the caller revokes the member's codes)."""
        if self.card.member_id is None:
            raise BadUserInputError("unlink_member: the card has no member", field="unlink_member")
        self.record("MEMBER_UNLINKED", self.card.member_id)
        self.card.member_id = None

    def update_kept(self, sealed: list[Sealed], pins: PinKeys) -> list[Sealed]:
        """Apply a new PIN or expiry to the card's own codes given again (rows kept); returns them."""
        kept = [
            (plan, seal)
            for plan, seal in sealed
            if plan.code_type in self.live and self.live[plan.code_type].lookup_hash in seal.lookup_hashes
        ]
        for plan, _ in kept:
            code = self.live[plan.code_type]
            if plan.pin is not None:  # a new PIN also ends a lockout
                assert code.id is not None
                stored = pins.hash(code.id, plan.pin)
                code.pin_hash, code.pin_key_ids = stored.value, stored.key_ids
                code.failed_pin_attempts, code.pin_locked_until = 0, None
            if plan.expires_on is not None:
                code.expires_on = plan.expires_on
            self.record("CODE_UPDATED", plan.code_type.value)
        return kept

    def unlock_pin(self) -> None:
        physical = self.live.get(CodeType.PHYSICAL)
        if physical is None or physical.pin_hash is None:
            raise BadUserInputError(
                "unlock_physical_pin: the card has no live PHYSICAL code with a PIN",
                field="unlock_physical_pin",
            )
        physical.failed_pin_attempts, physical.pin_locked_until = 0, None
        self.record("PIN_UNLOCKED", CodeType.PHYSICAL.value)

    def revoke(self, code_types: set[CodeType]) -> None:
        """Revoke the card's live codes of these types (others are skipped)."""
        for code_type in sorted(code_types & self.live.keys()):
            self.live[code_type].revoked_at = self.now
            self.record("CODE_REVOKED", code_type.value)
        self.session.flush()

    def change_details(self, details: CardDetails, clear: frozenset[str], min_expiry: timedelta) -> None:
        """Set the details given and clear those in ``clear``; an expiry given to a program's card
        is held to the legal minimum, as on issue (clearing it is the operator's decision)."""
        changed = {k: v for k, v in dataclasses.asdict(details).items() if v is not None}
        if details.expires_at is not None and self.card.program_id is not None:
            program = program_store.find_program(self.session, self.card.program_id, (self.card.store_id,))
            assert program is not None  # a card's program is never deleted
            check_min_expiry(program, details.expires_at, self.now, min_expiry)
        for name, value in {**changed, **dict.fromkeys(clear)}.items():
            setattr(self.card, name, value)
        start, end = self.card.usable_from, self.card.expires_at
        if start is not None and end is not None and end <= start:
            raise BadUserInputError("expires_at: must be later than usable_from", field="expires_at")
        if changed or clear:
            self.record("DETAILS_CHANGED", ",".join(sorted({*changed, *clear})))

    def finish(self) -> None:
        """Stamp the card with this change and its author, when a step changed it."""
        if self.touched:
            self.card.updated_at, self.card.updated_by = self.now, self.actor
        self.session.flush()
