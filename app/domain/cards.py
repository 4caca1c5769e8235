"""Create gift cards with their codes.

A new card starts PENDING with a zero balance. Codes the caller supplies are validated and sealed;
a PERSONAL code is generated here (``secrets``, 100 bits) and is returned in full exactly once, in
the result of the call that created it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from app.auth.secrets import PinHasher
from app.db import UnitOfWork
from app.domain.codes import CodeVault, generate_code, validate_code, validate_pin
from app.domain.money import check_currency
from app.domain.views import CardView, CodeView
from app.enums import CardState, CodeType
from app.errors import BadUserInputError, ConflictError
from app.models import GiftCard, GiftCardCode
from app.policy import Permission, Principal
from app.store import cards as store

_MEMBER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")


@dataclass(frozen=True)
class NewCard:
    currency: str | None = None  # the server's default currency when None
    physical_code: str | None = None
    physical_pin: str | None = None
    physical_code_expires_on: date | None = None
    external_code: str | None = None
    external_code_expires_on: date | None = None
    add_personal_code: bool = False
    personal_code_expires_on: date | None = None
    member_id: str | None = None
    details: CardDetails = field(default_factory=lambda: CardDetails())


@dataclass(frozen=True)
class CardDetails:
    """Operator fields of a card; on an edit, None leaves a field as it is."""

    usable_from: datetime | None = None
    expires_at: datetime | None = None
    note: str | None = None
    source_id: str | None = None
    ref_no: str | None = None


def check_details(details: CardDetails) -> None:
    texts = ((details.note, "note", 1000), (details.source_id, "sourceId", 128),
             (details.ref_no, "refNo", 128))
    for text, name, limit in texts:
        if text is not None and len(text) > limit:
            raise BadUserInputError(f"{name}: at most {limit} characters", field=name)
    for moment, name in ((details.usable_from, "usableFrom"), (details.expires_at, "expiresAt")):
        if moment is not None and moment.tzinfo is None:
            raise BadUserInputError(f"{name}: give a time zone (e.g. 2027-01-01T00:00:00Z)", field=name)
    if details.usable_from and details.expires_at and details.expires_at <= details.usable_from:
        raise BadUserInputError("expiresAt: must be later than usableFrom", field="expiresAt")


@dataclass(frozen=True)
class _PlannedCode:
    code_type: CodeType
    code: str
    pin: str | None
    expires_on: date | None
    field: str


def validate_member_id(member_id: str, field: str = "memberId") -> str:
    if not _MEMBER_ID.fullmatch(member_id):
        raise BadUserInputError(
            f"{field}: 1 to 64 letters, digits or . _ : @ -", field=field
        )
    return member_id


def _check_expiry(expires_on: date | None, field: str, today: date) -> None:
    if expires_on is not None and expires_on < today:
        raise BadUserInputError(f"{field}: the date is in the past", field=field)


def _plan(request: NewCard, today: date) -> list[_PlannedCode]:
    planned = []
    if request.physical_code is not None:
        pin = None if request.physical_pin is None else validate_pin(request.physical_pin, "physicalPin")
        code = validate_code(request.physical_code, "physicalCode")
        _check_expiry(request.physical_code_expires_on, "physicalCodeExpiresOn", today)
        planned.append(
            _PlannedCode(CodeType.PHYSICAL, code, pin, request.physical_code_expires_on, "physicalCode")
        )
    else:
        for value, field in ((request.physical_pin, "physicalPin"),
                             (request.physical_code_expires_on, "physicalCodeExpiresOn")):
            if value is not None:
                raise BadUserInputError(f"{field}: only allowed with physicalCode", field=field)
    if request.external_code is not None:
        code = validate_code(request.external_code, "externalCode")
        _check_expiry(request.external_code_expires_on, "externalCodeExpiresOn", today)
        planned.append(
            _PlannedCode(CodeType.EXTERNAL, code, None, request.external_code_expires_on, "externalCode")
        )
    elif request.external_code_expires_on is not None:
        raise BadUserInputError(
            "externalCodeExpiresOn: only allowed with externalCode", field="externalCodeExpiresOn"
        )
    if request.add_personal_code:
        if request.member_id is None:
            raise BadUserInputError(
                "memberId: a PERSONAL code is always tied to a member; give memberId",
                field="memberId",
            )
        _check_expiry(request.personal_code_expires_on, "personalCodeExpiresOn", today)
        planned.append(
            _PlannedCode(CodeType.PERSONAL, generate_code(), None,
                         request.personal_code_expires_on, "addPersonalCode")
        )
    elif request.personal_code_expires_on is not None:
        raise BadUserInputError(
            "personalCodeExpiresOn: only allowed with addPersonalCode", field="personalCodeExpiresOn"
        )
    if not planned:
        raise BadUserInputError(
            "giftcard: give at least one of physicalCode, externalCode or addPersonalCode",
            field="giftcard",
        )
    return planned


def create_card(
    uow: UnitOfWork,
    vault: CodeVault,
    pins: PinHasher,
    principal: Principal,
    request: NewCard,
    *,
    default_currency: str,
) -> CardView:
    principal.require(Permission.CREATE_GIFT_CARD)
    now = datetime.now(UTC)
    currency = default_currency if request.currency is None else check_currency(request.currency)
    if request.member_id is not None:
        validate_member_id(request.member_id)
    details = request.details
    check_details(details)
    planned = _plan(request, now.date())
    sealed = [(plan, vault.seal(plan.code, plan.code_type)) for plan in planned]
    # Hash PINs before the write transaction opens: argon2 is slow on purpose.
    pin_hashes = {plan.field: pins.hash(plan.pin) for plan in planned if plan.pin}

    with uow.begin() as session:
        for plan, seal in sealed:
            if store.code_hash_taken(session, seal.lookup_hash, plan.code_type.value):
                raise ConflictError(
                    f"{plan.field}: a {plan.code_type.value} code with that value already exists",
                    field=plan.field,
                )
        card = GiftCard(
            member_id=request.member_id, currency=currency, state=CardState.PENDING.value,
            balance=0, created_by=principal.subject, created_at=now, updated_at=now,
            usable_from=details.usable_from, expires_at=details.expires_at, note=details.note,
            source_id=details.source_id, ref_no=details.ref_no,
        )
        rows = [
            GiftCardCode(
                code_type=plan.code_type.value, lookup_hash=seal.lookup_hash,
                ciphertext=seal.ciphertext, key_id=seal.key_id, last4=seal.last4,
                pin_hash=pin_hashes.get(plan.field), expires_on=plan.expires_on, created_at=now,
            )
            for plan, seal in sealed
        ]
        store.add_card(session, card, rows)
        assert card.id is not None
        codes = tuple(
            CodeView(row.id, plan.code_type, plan.code, plan.expires_on, False)  # type: ignore[arg-type]
            for row, plan in zip(rows, planned, strict=True)
        )
    return CardView(
        id=card.id, member_id=card.member_id, currency=card.currency, state=CardState.PENDING,
        balance=0, created_at=now, updated_at=now, codes=codes, created_by=principal.subject,
        usable_from=details.usable_from, expires_at=details.expires_at, note=details.note,
        source_id=details.source_id, ref_no=details.ref_no,
    )
