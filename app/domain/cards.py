"""Create gift cards and edit their codes, member and operator fields.

A new card starts PENDING with a zero balance. Codes the caller supplies are validated and sealed;
a PERSONAL code is generated here (``secrets``, 100 bits) and is returned in full exactly once, in
the result of the call that created it. Adding a code of a type the card already has replaces
(revokes) the old one; revoked codes keep their hash, so they never match or come back. PERSONAL
codes always belong to the card's member: unlinking the member revokes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlmodel import Session

from app.domain.codes import CodeVault, SealedCode, generate_code, validate_code, validate_pin
from app.domain.identifiers import check_text, parse_card_id, validate_member_id
from app.domain.masking import CodeMasking, ShownCard
from app.domain.money import check_currency
from app.domain.mutations import MutationRunner
from app.domain.pins import PinKeys
from app.domain.reservations import take_reserved_code
from app.domain.times import to_utc
from app.entities import ShownCode
from app.enums import CardState, CodeType, Operation
from app.errors import BadUserInputError, ConflictError, NotFoundError
from app.models import GiftCard, GiftCardCode
from app.policy import Permission, Policy, Principal
from app.store import cards as store

# Types whose codes are tied to the member of the card.
MEMBER_CODE_TYPES = frozenset({CodeType.PERSONAL, CodeType.SHORT_PERSONAL})


@dataclass(frozen=True)
class CardDetails:
    """Operator fields of a card; on an edit, None leaves a field as it is."""

    usable_from: datetime | None = None
    expires_at: datetime | None = None
    note: str | None = None
    source_id: str | None = None
    ref_no: str | None = None


@dataclass(frozen=True)
class CodeChanges:
    """Codes to add (to a new card, or replacing a card's code of the same type)."""

    physical_code: str | None = None
    physical_pin: str | None = None
    physical_code_expires_on: date | None = None
    external_code: str | None = None
    external_code_expires_on: date | None = None
    add_personal_code: bool = False
    personal_code_expires_on: date | None = None


@dataclass(frozen=True)
class NewCard:
    codes: CodeChanges
    currency: str | None = None  # the server's default currency when None
    member_id: str | None = None
    details: CardDetails = field(default_factory=CardDetails)


@dataclass(frozen=True)
class CardEdit:
    card_id: str
    codes: CodeChanges = field(default_factory=CodeChanges)
    revoke: frozenset[CodeType] = frozenset()
    member_id: str | None = None  # links a member to a card that has none
    unlink_member: bool = False
    unlock_pin: bool = False  # clear the PHYSICAL code's PIN lockout and failure count
    details: CardDetails = field(default_factory=CardDetails)


@dataclass(frozen=True)
class _PlannedCode:
    code_type: CodeType
    code: str
    pin: str | None
    expires_on: date | None
    field: str


@dataclass(frozen=True)
class _SealedPlan:
    plan: _PlannedCode
    seal: SealedCode


def normalise_details(details: CardDetails) -> CardDetails:
    """Checked operator fields, times in UTC (SQLite keeps no offset, so store UTC only)."""
    check_text(details.note, "note", 1000, multiline=True)
    check_text(details.source_id, "sourceId", 128)
    check_text(details.ref_no, "refNo", 128)
    details = dataclasses.replace(
        details,
        usable_from=to_utc(details.usable_from, "usableFrom"),
        expires_at=to_utc(details.expires_at, "expiresAt"),
    )
    if details.usable_from and details.expires_at and details.expires_at <= details.usable_from:
        raise BadUserInputError("expiresAt: must be later than usableFrom", field="expiresAt")
    return details


def _check_expiry(expires_on: date | None, field: str, today: date) -> None:
    if expires_on is not None and expires_on < today:
        raise BadUserInputError(f"{field}: the date is in the past", field=field)


def _only_with(value: object, field: str, needs: str) -> None:
    if value is not None:
        raise BadUserInputError(f"{field}: only allowed with {needs}", field=field)


def _plan(changes: CodeChanges, member_given: bool, today: date) -> list[_PlannedCode]:
    planned = []
    if changes.physical_code is not None:
        pin = None if changes.physical_pin is None else validate_pin(changes.physical_pin, "physicalPin")
        code = validate_code(changes.physical_code, "physicalCode")
        _check_expiry(changes.physical_code_expires_on, "physicalCodeExpiresOn", today)
        planned.append(
            _PlannedCode(CodeType.PHYSICAL, code, pin, changes.physical_code_expires_on, "physicalCode")
        )
    else:
        _only_with(changes.physical_pin, "physicalPin", "physicalCode")
        _only_with(changes.physical_code_expires_on, "physicalCodeExpiresOn", "physicalCode")
    if changes.external_code is not None:
        code = validate_code(changes.external_code, "externalCode")
        _check_expiry(changes.external_code_expires_on, "externalCodeExpiresOn", today)
        planned.append(
            _PlannedCode(CodeType.EXTERNAL, code, None, changes.external_code_expires_on, "externalCode")
        )
    else:
        _only_with(changes.external_code_expires_on, "externalCodeExpiresOn", "externalCode")
    if changes.add_personal_code:
        if not member_given:
            raise BadUserInputError(
                "memberId: a PERSONAL code is always tied to a member; give memberId",
                field="memberId",
            )
        _check_expiry(changes.personal_code_expires_on, "personalCodeExpiresOn", today)
        planned.append(
            _PlannedCode(
                CodeType.PERSONAL, generate_code(), None, changes.personal_code_expires_on, "addPersonalCode"
            )
        )
    else:
        _only_with(changes.personal_code_expires_on, "personalCodeExpiresOn", "addPersonalCode")
    return planned


def _seal(planned: list[_PlannedCode], vault: CodeVault) -> list[_SealedPlan]:
    return [_SealedPlan(plan, vault.seal(plan.code, plan.code_type)) for plan in planned]


def _set_pin(code: GiftCardCode, pin: str, pins: PinKeys) -> None:
    """Store ``pin`` on a flushed code row (its keyed value binds the code's id); a new PIN also
    ends a lockout."""
    assert code.id is not None
    stored = pins.hash(code.id, pin)
    code.pin_hash, code.pin_key_ids = stored.value, stored.key_ids
    code.failed_pin_attempts, code.pin_locked_until = 0, None


def _set_new_pins(
    session: Session, rows: list[GiftCardCode], sealed: list[_SealedPlan], pins: PinKeys
) -> None:
    for row, item in zip(rows, sealed, strict=True):
        if item.plan.pin is not None:
            _set_pin(row, item.plan.pin, pins)
    session.flush()


def _new_code_rows(
    session: Session, sealed: list[_SealedPlan], principal: Principal, now: datetime
) -> list[GiftCardCode]:
    """Check each new code is free (and take reserved stock), then build its row."""
    rows = []
    for item in sealed:
        plan, seal = item.plan, item.seal
        if store.code_hash_taken(session, seal.lookup_hashes, plan.code_type.value):
            raise ConflictError(
                f"{plan.field}: a {plan.code_type.value} code with that value already exists",
                field=plan.field,
            )
        take_reserved_code(session, seal.lookup_hashes, plan.code_type, principal, now, plan.field)
        rows.append(
            GiftCardCode(
                code_type=plan.code_type.value,
                lookup_hash=seal.lookup_hash,
                lookup_key_id=seal.lookup_key_id,
                ciphertext=seal.ciphertext,
                key_id=seal.key_id,
                last4=seal.last4,
                expires_on=plan.expires_on,
                created_at=now,
            )
        )
    return rows


def card_view(
    session: Session,
    card_id: int,
    vault: CodeVault,
    policy: Policy,
    principal: Principal,
    shown_in_full: dict[int, str] | None = None,
) -> ShownCard:
    """The card as the caller may see it; codes created by this call are shown in full."""
    (view,) = CodeMasking(vault, policy).show(principal, store.card_rows(session, card_id)).cards
    if not shown_in_full:
        return view
    codes = [code for code in view.codes if code.id not in shown_in_full]
    for row in store.live_codes(session, card_id):
        if row.id in shown_in_full:
            assert row.id is not None
            codes.append(
                ShownCode(row.id, CodeType(row.code_type), shown_in_full[row.id], row.expires_on, False)
            )
    return dataclasses.replace(view, codes=tuple(sorted(codes, key=lambda code: code.id)))


def create_card(
    runner: MutationRunner,
    vault: CodeVault,
    pins: PinKeys,
    policy: Policy,
    principal: Principal,
    request: NewCard,
    *,
    default_currency: str,
    idempotency_key: str | None = None,
) -> ShownCard:
    principal.require(Permission.CREATE_GIFT_CARD)
    now = datetime.now(UTC)
    currency = default_currency if request.currency is None else check_currency(request.currency)
    if request.member_id is not None:
        validate_member_id(request.member_id)
    request = dataclasses.replace(request, details=normalise_details(request.details))
    planned = _plan(request.codes, request.member_id is not None, now.date())
    if not planned:
        raise BadUserInputError(
            "giftcard: give at least one of physicalCode, externalCode or addPersonalCode",
            field="giftcard",
        )
    sealed = _seal(planned, vault)

    def work(session: Session) -> ShownCard:
        details = request.details
        card = GiftCard(
            member_id=request.member_id,
            currency=currency,
            state=CardState.PENDING.value,
            balance=0,
            created_by=principal.subject,
            created_at=now,
            updated_at=now,
            usable_from=details.usable_from,
            expires_at=details.expires_at,
            note=details.note,
            source_id=details.source_id,
            ref_no=details.ref_no,
        )
        rows = _new_code_rows(session, sealed, principal, now)
        store.add_card(session, card, rows)
        _set_new_pins(session, rows, sealed, pins)
        assert card.id is not None
        store.add_event(session, card.id, "CREATED", principal.subject, now)
        full = {row.id: item.plan.code for row, item in zip(rows, sealed, strict=True) if row.id}
        return card_view(session, card.id, vault, policy, principal, full)

    return runner.run(principal, idempotency_key, Operation.CREATE_CARD, request, work, ShownCard)


def edit_card(
    runner: MutationRunner,
    vault: CodeVault,
    pins: PinKeys,
    policy: Policy,
    principal: Principal,
    request: CardEdit,
    *,
    idempotency_key: str | None = None,
) -> ShownCard:
    principal.require(Permission.EDIT_GIFT_CARD)
    card_id = parse_card_id(request.card_id)
    now = datetime.now(UTC)
    if request.member_id is not None:
        validate_member_id(request.member_id)
    if request.unlink_member and (request.member_id is not None or request.codes.add_personal_code):
        raise BadUserInputError(
            "unlinkMember: cannot be combined with memberId or addPersonalCode", field="unlinkMember"
        )
    request = dataclasses.replace(request, details=normalise_details(request.details))
    planned = _plan(request.codes, request.member_id is not None, now.date())
    if not (
        planned
        or request.revoke
        or request.member_id
        or request.unlink_member
        or request.unlock_pin
        or request.details != CardDetails()
    ):
        raise BadUserInputError("giftcard: nothing to change", field="giftcard")
    sealed = _seal(planned, vault)

    def work(session: Session) -> ShownCard:
        card = store.card_for_update(session, card_id)
        if card is None:
            raise NotFoundError("id: no gift card with this id", field="id")
        if card.state == CardState.DEACTIVATED:
            raise ConflictError("id: the card is deactivated and cannot change", field="id")
        actor = principal.subject
        live = store.live_codes(session, card_id)
        by_type = {CodeType(code.code_type): code for code in live}

        if request.member_id is not None and request.member_id != card.member_id:
            if card.member_id is not None:
                raise BadUserInputError(
                    "memberId: the card belongs to another member; unlink it first", field="memberId"
                )
            card.member_id = request.member_id
            store.add_event(session, card_id, "MEMBER_LINKED", actor, now, request.member_id)

        revoke = set(request.revoke)
        for code_type in request.revoke:
            if code_type not in by_type:
                field_name = f"revoke{code_type.value.title().replace('_', '')}Code"
                raise BadUserInputError(
                    f"{field_name}: the card has no live {code_type.value} code", field=field_name
                )
        if request.unlink_member:
            if card.member_id is None:
                raise BadUserInputError("unlinkMember: the card has no member", field="unlinkMember")
            store.add_event(session, card_id, "MEMBER_UNLINKED", actor, now, card.member_id)
            card.member_id = None
            revoke |= MEMBER_CODE_TYPES & by_type.keys()
        # The card's own code given again keeps its row: only a new PIN or expiry is applied.
        kept = [
            item
            for item in sealed
            if item.plan.code_type in by_type
            and by_type[item.plan.code_type].lookup_hash in item.seal.lookup_hashes
        ]
        for item in kept:
            code = by_type[item.plan.code_type]
            if item.plan.pin is not None:
                _set_pin(code, item.plan.pin, pins)
            if item.plan.expires_on is not None:
                code.expires_on = item.plan.expires_on
            store.add_event(session, card_id, "CODE_UPDATED", actor, now, item.plan.code_type.value)
        if request.unlock_pin:
            physical = by_type.get(CodeType.PHYSICAL)
            if physical is None or physical.pin_hash is None:
                raise BadUserInputError(
                    "unlockPhysicalPin: the card has no live PHYSICAL code with a PIN",
                    field="unlockPhysicalPin",
                )
            physical.failed_pin_attempts, physical.pin_locked_until = 0, None
            store.add_event(session, card_id, "PIN_UNLOCKED", actor, now, CodeType.PHYSICAL.value)
        new = [item for item in sealed if item not in kept]
        revoke |= {item.plan.code_type for item in new} & by_type.keys()  # replaced
        for code_type in sorted(revoke):
            by_type[code_type].revoked_at = now
            store.add_event(session, card_id, "CODE_REVOKED", actor, now, code_type.value)
        session.flush()

        rows = _new_code_rows(session, new, principal, now)
        store.add_codes(session, card, rows)
        _set_new_pins(session, rows, new, pins)
        for item in new:
            store.add_event(session, card_id, "CODE_ADDED", actor, now, item.plan.code_type.value)

        changed = {k: v for k, v in dataclasses.asdict(request.details).items() if v is not None}
        for name, value in changed.items():
            setattr(card, name, value)
        start, end = card.usable_from, card.expires_at
        if start is not None and end is not None and end <= start:
            raise BadUserInputError("expiresAt: must be later than usableFrom", field="expiresAt")
        if changed:
            store.add_event(session, card_id, "DETAILS_CHANGED", actor, now, ",".join(sorted(changed)))
        card.updated_at = now
        session.flush()
        full = {row.id: item.plan.code for row, item in zip(rows, new, strict=True) if row.id}
        return card_view(session, card_id, vault, policy, principal, full)

    return runner.run(principal, idempotency_key, Operation.EDIT_CARD, request, work, ShownCard)
