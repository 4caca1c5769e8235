"""What a caller asks of a card mutation, and its checks before any write: operator fields checked
and moved to UTC, supplied codes validated, and a PERSONAL code generated (``secrets``, 100 bits).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar

from app.domain.codes import generate_code, validate_code, validate_pin
from app.domain.identifiers import check_location_id, check_text, validate_member_id
from app.domain.times import to_utc
from app.enums import CodeType
from app.errors import BadUserInputError


@dataclass(frozen=True)
class CardDetails:
    """Operator fields of a card; on an edit, None leaves a field as it is (CardEdit.clear clears it)."""

    usable_from: datetime | None = None
    expires_at: datetime | None = None
    note: str | None = None
    source_id: str | None = None
    ref_no: str | None = None


# The fields an edit clears by an explicit null.
CLEARABLE = frozenset(item.name for item in dataclasses.fields(CardDetails))


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
    initial_value: str | None = None  # a decimal in the card's currency: issue it funded (an ADD)
    store_id: str | None = None  # the caller's one store when None
    program_id: str | None = None  # the store's default program when None
    location_id: str | None = None  # where it is issued (and its initial value loaded)
    enabled: bool | None = None  # False: issued BLOCKED
    # An idempotency key covers these only when given: the same digest as before they existed.
    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = (
        "initial_value",
        "store_id",
        "program_id",
        "location_id",
        "enabled",
    )


@dataclass(frozen=True)
class CardEdit:
    card_id: str
    codes: CodeChanges = field(default_factory=CodeChanges)
    revoke: frozenset[CodeType] = frozenset()
    member_id: str | None = None  # links a member to a card that has none
    unlink_member: bool = False
    unlock_pin: bool = False  # clear the PHYSICAL code's PIN lockout and failure count
    details: CardDetails = field(default_factory=CardDetails)
    enabled: bool | None = None  # True: unblock, False: block; None: the state stays
    clear: frozenset[str] | None = None  # names of CardDetails fields to clear; None: none
    # An idempotency key covers these only when given: the same digest as before they existed.
    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ("enabled", "clear")


@dataclass(frozen=True)
class PlannedCode:
    """A code to add, checked (or generated), with the input field that named it."""

    code_type: CodeType
    code: str
    pin: str | None
    expires_on: date | None
    field: str


def _normalise_details(details: CardDetails) -> CardDetails:
    """Checked operator fields, times in UTC (SQLite keeps no offset, so store UTC only)."""
    check_text(details.note, "note", 1000, multiline=True)
    check_text(details.source_id, "source_id", 128)
    check_text(details.ref_no, "ref_no", 128)
    details = dataclasses.replace(
        details,
        usable_from=to_utc(details.usable_from, "usable_from"),
        expires_at=to_utc(details.expires_at, "expires_at"),
    )
    if details.usable_from and details.expires_at and details.expires_at <= details.usable_from:
        raise BadUserInputError("expires_at: must be later than usable_from", field="expires_at")
    return details


def _check_clear(clear: frozenset[str], details: CardDetails) -> None:
    """A field is cleared or set, not both, and only an operator field is cleared."""
    for name in sorted(clear):
        if name not in CLEARABLE or getattr(details, name) is not None:
            raise BadUserInputError(f"{name}: cannot be cleared", field=name)


def _check_expiry(expires_on: date | None, field: str, today: date) -> None:
    if expires_on is not None and expires_on < today:
        raise BadUserInputError(f"{field}: the date is in the past", field=field)


def _only_with(value: object, field: str, needs: str) -> None:
    if value is not None:
        raise BadUserInputError(f"{field}: only allowed with {needs}", field=field)


def _plan_codes(changes: CodeChanges, member_given: bool, today: date) -> list[PlannedCode]:
    """The codes to add, in the order PHYSICAL, EXTERNAL, PERSONAL; refuses a misplaced field."""
    planned = []
    if changes.physical_code is not None:
        pin = None if changes.physical_pin is None else validate_pin(changes.physical_pin, "physical_pin")
        code = validate_code(changes.physical_code, "physical_code")
        expires = changes.physical_code_expires_on
        _check_expiry(expires, "physical_code_expires_on", today)
        planned.append(PlannedCode(CodeType.PHYSICAL, code, pin, expires, "physical_code"))
    else:
        _only_with(changes.physical_pin, "physical_pin", "physical_code")
        _only_with(changes.physical_code_expires_on, "physical_code_expires_on", "physical_code")
    if changes.external_code is not None:
        code = validate_code(changes.external_code, "external_code")
        expires = changes.external_code_expires_on
        _check_expiry(expires, "external_code_expires_on", today)
        planned.append(PlannedCode(CodeType.EXTERNAL, code, None, expires, "external_code"))
    else:
        _only_with(changes.external_code_expires_on, "external_code_expires_on", "external_code")
    if changes.add_personal_code:
        if not member_given:
            raise BadUserInputError(
                "member_id: a PERSONAL code is always tied to a member; give member_id", field="member_id"
            )
        expires = changes.personal_code_expires_on
        _check_expiry(expires, "personal_code_expires_on", today)
        planned.append(PlannedCode(CodeType.PERSONAL, generate_code(), None, expires, "add_personal_code"))
    else:
        _only_with(changes.personal_code_expires_on, "personal_code_expires_on", "add_personal_code")
    return planned


NO_CODE = "giftcard: give at least one of physical_code, external_code or add_personal_code"


def check_new_card(
    request: NewCard, today: date, *, codes_optional: bool = False
) -> tuple[NewCard, list[PlannedCode]]:
    """The request with its details normalised, and the codes to add (at least one, unless
    ``codes_optional``: a program may generate the card's code)."""
    if request.member_id is not None:
        validate_member_id(request.member_id)
    check_location_id(request.location_id)
    request = dataclasses.replace(request, details=_normalise_details(request.details))
    planned = _plan_codes(request.codes, request.member_id is not None, today)
    if not planned and not codes_optional:
        raise BadUserInputError(NO_CODE, field="giftcard")
    return request, planned


def check_edit(request: CardEdit, today: date) -> tuple[CardEdit, list[PlannedCode]]:
    """The request, details normalised, and the codes to add; refuses an edit that changes nothing."""
    if request.member_id is not None:
        validate_member_id(request.member_id)
    if request.unlink_member and (request.member_id is not None or request.codes.add_personal_code):
        raise BadUserInputError(
            "unlink_member: cannot be combined with member_id or add_personal_code", field="unlink_member"
        )
    request = dataclasses.replace(request, details=_normalise_details(request.details))
    planned = _plan_codes(request.codes, request.member_id is not None, today)
    if request.clear is not None:
        _check_clear(request.clear, request.details)
        request = dataclasses.replace(request, clear=request.clear or None)  # none cleared: None
    asked = (
        planned,
        request.revoke,
        request.member_id,
        request.unlink_member,
        request.unlock_pin,
        request.clear,
    )
    if not any(asked) and request.enabled is None and request.details == CardDetails():
        raise BadUserInputError("giftcard: nothing to change", field="giftcard")
    return request, planned
