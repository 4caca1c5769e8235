"""Create gift cards and edit their codes, member and operator fields.

A new code replaces (revokes) the card's code of that type; revoked codes keep their hash, so they
never match again. Unlinking the member revokes its PERSONAL codes. A generated code is shown in full
once, in the answer of the call that made it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from app.domain.balances import BalanceRules
from app.domain.card_edits import EditSteps, Sealed
from app.domain.card_requests import (
    NO_CODE,
    CardEdit,
    NewCard,
    PlannedCode,
    check_edit,
    check_new_card,
)
from app.domain.codes import CodeVault
from app.domain.funding import card_currency, fund_new_card, issue_terms
from app.domain.identifiers import parse_card_id
from app.domain.masking import CodeMasking, ShownCard
from app.domain.money import check_currency
from app.domain.mutations import Mutation, MutationRunner
from app.domain.pins import PinKeys
from app.domain.program_rules import generate_code
from app.domain.programs import program_for_card
from app.domain.reservations import take_reserved_code
from app.domain.scoping import NO_SUCH_STORE, home_store
from app.domain.states import transition
from app.entities import Program, ShownCode
from app.enums import CardState, CodeType, Operation
from app.errors import BadUserInputError, ConflictError, NotFoundError
from app.models import GiftCard, GiftCardCode
from app.policy import Permission, Principal
from app.store import cards as store

# Types whose codes are tied to the member of the card.
MEMBER_CODE_TYPES = frozenset({CodeType.PERSONAL, CodeType.SHORT_PERSONAL})


def _seal(planned: list[PlannedCode], vault: CodeVault) -> list[Sealed]:
    return [(plan, vault.seal(plan.code, plan.code_type)) for plan in planned]


def _new_code_rows(
    session: Session, sealed: list[Sealed], principal: Principal, now: datetime, store_id: str
) -> list[GiftCardCode]:
    """Check each new code is free in the store (and take its reserved stock), then build its row."""
    rows = []
    for plan, seal in sealed:
        if store.code_hash_taken(session, seal.lookup_hashes, plan.code_type.value, store_id):
            raise ConflictError(
                f"{plan.field}: a {plan.code_type.value} code with that value already exists",
                field=plan.field,
            )
        take_reserved_code(session, seal.lookup_hashes, plan, principal, now, store_id)
        columns = {**seal.columns, "expires_on": plan.expires_on, "created_at": now}
        rows.append(GiftCardCode(code_type=plan.code_type.value, **columns))
    return rows


def lock_card(session: Session, principal: Principal, card_id: int) -> GiftCard:
    """The card, if in the caller's stores, locked until the transaction ends."""
    card = store.card_for_update(session, card_id, principal.store_ids())
    if card is None:
        raise NotFoundError("id: no gift card with this id", field="id")
    return card


def card_view(
    session: Session,
    masking: CodeMasking,
    principal: Principal,
    card_id: int,
    shown_in_full: Mapping[int, str] | None = None,
) -> ShownCard:
    """The card as the caller may see it, with the codes this call created (by id) in full."""
    (card,) = store.card_rows(session, card_id)
    (view,) = masking.show(principal, [card]).cards
    full = shown_in_full or {}
    codes = [code for code in view.codes if code.id not in full] + [
        ShownCode(code.id, code.code_type, full[code.id], code.expires_on, False)
        for code in card.codes
        if code.id in full
    ]
    return dataclasses.replace(view, codes=tuple(sorted(codes, key=lambda code: code.id)))


def _generated(session: Session, vault: CodeVault, program: Program | None, store_id: str) -> list[Sealed]:
    """The PHYSICAL code a card given no code takes: a new one in its program's format, free in the
    store (drawn again on the astronomically rare clash); without a program, a code must be given."""
    if program is None:
        raise BadUserInputError(NO_CODE, field="giftcard")
    while True:
        plan = PlannedCode(CodeType.PHYSICAL, generate_code(program.code_format), None, None, "physical_code")
        seal = vault.seal(plan.code, plan.code_type)
        if not store.code_hash_taken(session, seal.lookup_hashes, plan.code_type.value, store_id):
            return [(plan, seal)]


def _require_create(principal: Principal, request: NewCard) -> None:
    """CreateGiftCard, and the permissions of what the new card is issued with: its initial value
    (GiftCardTransAdd) and a BLOCKED state (BlockGiftCard)."""
    principal.require(Permission.CREATE_GIFT_CARD)
    if request.initial_value is not None:
        principal.require(Permission.TRANS_ADD)
    if request.enabled is False:
        principal.require(Permission.BLOCK_GIFT_CARD)


@dataclasses.dataclass(frozen=True)
class Cards:
    """Creating cards and editing them; each answers with the card as the caller may see it."""

    runner: MutationRunner
    vault: CodeVault
    pins: PinKeys
    masking: CodeMasking
    default_currency: str
    rules: BalanceRules
    min_expiry: timedelta = timedelta(days=1825)  # GIFTCARDS_MIN_EXPIRY_DAYS, for program cards

    def create(self, principal: Principal, request: NewCard, key: str | None) -> ShownCard:
        """A new card; with an initial value it is funded by an ADD and ACTIVE, in the same writes."""
        _require_create(principal, request)
        now = datetime.now(UTC)
        store_id = home_store(principal, request.store_id)
        currency = None if request.currency is None else check_currency(request.currency)
        request, planned = check_new_card(request, now.date(), codes_optional=True)
        sealed = _seal(planned, self.vault)

        def work(session: Session) -> ShownCard:
            if principal.store_ids() is None and not store.store_exists(session, store_id):
                raise NotFoundError(NO_SUCH_STORE, field="store_id")
            program = program_for_card(session, store_id, request.program_id)
            money = card_currency(program, currency, self.default_currency)
            terms = issue_terms(request, program, money, self.rules, now, self.min_expiry)
            issued = sealed or _generated(session, self.vault, program, store_id)
            rows = _new_code_rows(session, issued, principal, now, store_id)
            card = GiftCard(
                store_id=store_id,
                program_id=None if program is None else program.id,
                member_id=request.member_id,
                state=CardState.PENDING.value,
                balance=0,
                created_by=principal.subject,
                created_at=now,
                updated_at=now,
                updated_by=principal.subject,
                location_id=request.location_id,
                **terms,
            )
            card_id = store.add_card(session, card)
            shown_in_full = self._add_codes(session, card, rows, issued)
            if card.initial_value is not None:
                fund_new_card(session, self.rules, card, card.initial_value, now, program)
            store.add_event(session, card, "CREATED", principal.subject, now)
            if request.enabled is False:  # issued, then blocked: its events say both
                transition(session, card, Operation.BLOCK_CARD, principal.subject, now, None)
            return card_view(session, self.masking, principal, card_id, shown_in_full)

        return self.runner.run(principal, Mutation(Operation.CREATE_CARD, request, ShownCard, key), work)

    def edit(self, principal: Principal, request: CardEdit, key: str | None) -> ShownCard:
        """The edit's steps in one transaction: codes, member, state (``enabled``), details."""
        principal.require(Permission.EDIT_GIFT_CARD)
        if request.enabled is not None:
            principal.require(Permission.BLOCK_GIFT_CARD)
        card_id = parse_card_id(request.card_id)
        now = datetime.now(UTC)
        request, planned = check_edit(request, now.date())
        sealed = _seal(planned, self.vault)

        def work(session: Session) -> ShownCard:
            card = lock_card(session, principal, card_id)
            if card.state == CardState.DEACTIVATED:
                raise ConflictError("id: the card is deactivated and cannot change", field="id")
            edit = EditSteps(session, card, principal.subject, now)
            edit.link_member(request.member_id)
            edit.check_revocable(request.revoke)
            revoke = set(request.revoke)
            if request.unlink_member:
                edit.unlink_member()
                revoke |= MEMBER_CODE_TYPES
            kept = edit.update_kept(sealed, self.pins)
            if request.unlock_pin:
                edit.unlock_pin()
            new = [item for item in sealed if item not in kept]
            edit.revoke(revoke | {plan.code_type for plan, _ in new})  # new codes replace old ones
            rows = _new_code_rows(session, new, principal, now, card.store_id)
            shown_in_full = self._add_codes(session, card, rows, new)
            for plan, _ in new:
                edit.record("CODE_ADDED", plan.code_type.value)
            edit.set_enabled(request.enabled)
            edit.change_details(request.details, request.clear or frozenset(), self.min_expiry)
            edit.finish()
            return card_view(session, self.masking, principal, card_id, shown_in_full)

        return self.runner.run(principal, Mutation(Operation.EDIT_CARD, request, ShownCard, key), work)

    def _add_codes(
        self, session: Session, card: GiftCard, rows: list[GiftCardCode], sealed: list[Sealed]
    ) -> dict[int, str]:
        """Insert the new codes' rows and set their PINs; the new codes in full, by id."""
        added = dict(zip(store.add_codes(session, card, rows), (plan for plan, _ in sealed), strict=True))
        for code_id, plan in added.items():
            if plan.pin is not None:
                stored = self.pins.hash(code_id, plan.pin)
                store.set_pin(session, code_id, stored.value, stored.key_ids)
        return {code_id: plan.code for code_id, plan in added.items()}
