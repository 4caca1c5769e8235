"""What a card mutation asks, checked before any write: operator fields, the plan of codes to add,
and edits that change nothing (plain values, no database)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from app.domain.card_requests import (
    CardDetails,
    CardEdit,
    CodeChanges,
    NewCard,
    PlannedCode,
    check_edit,
    check_new_card,
)
from app.domain.codes import ALPHABET, PERSONAL_CODE_LENGTH
from app.enums import CodeType
from app.errors import BadUserInputError

TODAY = date(2026, 12, 1)
YESTERDAY = TODAY - timedelta(days=1)
PLUS_TWO = timezone(timedelta(hours=2))
PHYSICAL = CodeChanges(physical_code="PHYS12345678")
CODE_RULE = "a code is 4 to 64 letters and digits (spaces and dashes are ignored)"


def _refusal(check, request) -> tuple[str, str | None]:
    with pytest.raises(BadUserInputError) as caught:
        check(request, TODAY)
    return caught.value.message, caught.value.field


# --- the plan of codes -------------------------------------------------------------------------


def test_a_physical_code_is_planned_normalised_with_its_pin_and_expiry():
    changes = CodeChanges(physical_code="phys-1234 5678", physical_pin="0042", physical_code_expires_on=TODAY)
    _, planned = check_new_card(NewCard(changes), TODAY)
    assert planned == [PlannedCode(CodeType.PHYSICAL, "PHYS12345678", "0042", TODAY, "physical_code")]


def test_an_external_code_is_planned_without_a_pin():
    changes = CodeChanges(external_code="ext-code-0001", external_code_expires_on=date(2030, 1, 1))
    _, planned = check_new_card(NewCard(changes), TODAY)
    assert planned == [PlannedCode(CodeType.EXTERNAL, "EXTCODE0001", None, date(2030, 1, 1), "external_code")]


def test_a_personal_code_is_generated_for_a_member():
    changes = CodeChanges(add_personal_code=True, personal_code_expires_on=date(2030, 1, 1))
    _, planned = check_new_card(NewCard(changes, member_id="M1"), TODAY)
    (personal,) = planned
    assert (personal.code_type, personal.pin, personal.expires_on, personal.field) == (
        CodeType.PERSONAL,
        None,
        date(2030, 1, 1),
        "add_personal_code",
    )
    assert len(personal.code) == PERSONAL_CODE_LENGTH == 20
    assert set(personal.code) <= set(ALPHABET)


def test_each_generated_personal_code_is_new():
    request = NewCard(CodeChanges(add_personal_code=True), member_id="M1")
    codes = {check_new_card(request, TODAY)[1][0].code for _ in range(5)}
    assert len(codes) == 5


def test_codes_are_planned_physical_then_external_then_personal():
    changes = CodeChanges(physical_code="PHYS12345678", external_code="EXT00001", add_personal_code=True)
    _, planned = check_new_card(NewCard(changes, member_id="M1"), TODAY)
    assert [(plan.code_type, plan.field) for plan in planned] == [
        (CodeType.PHYSICAL, "physical_code"),
        (CodeType.EXTERNAL, "external_code"),
        (CodeType.PERSONAL, "add_personal_code"),
    ]


@pytest.mark.parametrize(
    ("changes", "field", "needs"),
    [
        (CodeChanges(external_code="EXT00001", physical_pin="1234"), "physical_pin", "physical_code"),
        (
            CodeChanges(external_code="EXT00001", physical_code_expires_on=TODAY),
            "physical_code_expires_on",
            "physical_code",
        ),
        (
            CodeChanges(physical_code="PHYS1234", external_code_expires_on=TODAY),
            "external_code_expires_on",
            "external_code",
        ),
        (
            CodeChanges(physical_code="PHYS1234", personal_code_expires_on=TODAY),
            "personal_code_expires_on",
            "add_personal_code",
        ),
    ],
)
def test_a_field_that_belongs_to_a_code_not_given_is_refused(changes, field, needs):
    message = f"{field}: only allowed with {needs}"
    assert _refusal(check_new_card, NewCard(changes, member_id="M1")) == (message, field)
    assert _refusal(check_edit, CardEdit("1", changes, member_id="M1")) == (message, field)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            CodeChanges(physical_code="PHYS1234", physical_code_expires_on=YESTERDAY),
            "physical_code_expires_on",
        ),
        (
            CodeChanges(external_code="EXT00001", external_code_expires_on=YESTERDAY),
            "external_code_expires_on",
        ),
        (CodeChanges(add_personal_code=True, personal_code_expires_on=YESTERDAY), "personal_code_expires_on"),
    ],
)
def test_a_code_expiry_in_the_past_is_refused(changes, field):
    message = f"{field}: the date is in the past"
    assert _refusal(check_new_card, NewCard(changes, member_id="M1")) == (message, field)
    assert _refusal(check_edit, CardEdit("1", changes, member_id="M1")) == (message, field)


def test_a_code_may_expire_today():
    changes = CodeChanges(
        physical_code="PHYS1234",
        physical_code_expires_on=TODAY,
        external_code="EXT00001",
        external_code_expires_on=TODAY,
        add_personal_code=True,
        personal_code_expires_on=TODAY,
    )
    _, planned = check_new_card(NewCard(changes, member_id="M1"), TODAY)
    assert [plan.expires_on for plan in planned] == [TODAY, TODAY, TODAY]


@pytest.mark.parametrize(
    ("changes", "message", "field"),
    [
        (CodeChanges(physical_code="AB1"), f"physical_code: {CODE_RULE}", "physical_code"),
        (CodeChanges(physical_code="ABCD_1234"), f"physical_code: {CODE_RULE}", "physical_code"),
        (CodeChanges(external_code="E" * 65), f"external_code: {CODE_RULE}", "external_code"),
        (
            CodeChanges(physical_code="PHYS1234", physical_pin="123"),
            "physical_pin: a PIN is 4 to 12 digits",
            "physical_pin",
        ),
        (
            CodeChanges(physical_code="PHYS1234", physical_pin="12345678901a"),
            "physical_pin: a PIN is 4 to 12 digits",
            "physical_pin",
        ),
    ],
)
def test_a_malformed_code_or_pin_is_refused_naming_its_field(changes, message, field):
    assert _refusal(check_new_card, NewCard(changes)) == (message, field)


def test_the_pin_is_checked_before_the_code():
    changes = CodeChanges(physical_code="X", physical_pin="X")
    assert _refusal(check_new_card, NewCard(changes))[1] == "physical_pin"


def test_a_personal_code_needs_a_member_in_the_request():
    message = ("member_id: a PERSONAL code is always tied to a member; give member_id", "member_id")
    assert _refusal(check_new_card, NewCard(CodeChanges(add_personal_code=True))) == message
    # An edit too: the card's own member does not count, the request must name one.
    assert _refusal(check_edit, CardEdit("1", CodeChanges(add_personal_code=True))) == message


# --- a new card --------------------------------------------------------------------------------


def test_a_new_card_needs_at_least_one_code():
    assert _refusal(check_new_card, NewCard(CodeChanges(), member_id="M1")) == (
        "giftcard: give at least one of physical_code, external_code or add_personal_code",
        "giftcard",
    )


def test_a_new_card_keeps_its_fields_with_times_in_utc():
    details = CardDetails(
        usable_from=datetime(2027, 1, 1, 2, tzinfo=PLUS_TWO),
        expires_at=datetime(2028, 1, 1, tzinfo=UTC),
        note="line one\nline\ttwo",
        source_id="src",
        ref_no="ref",
    )
    request, _ = check_new_card(NewCard(PHYSICAL, "EUR", "M1", details), TODAY)
    in_utc = dataclasses.replace(details, usable_from=datetime(2027, 1, 1, tzinfo=UTC))
    assert request == NewCard(PHYSICAL, "EUR", "M1", in_utc)
    assert request.details.usable_from is not None and request.details.usable_from.tzinfo is UTC


def test_a_malformed_member_id_is_refused():
    assert _refusal(check_new_card, NewCard(PHYSICAL, member_id="has space")) == (
        "member_id: 1 to 64 letters, digits or . _ : @ -",
        "member_id",
    )


@pytest.mark.parametrize(
    ("details", "message", "field"),
    [
        (CardDetails(note="n" * 1001), "note: at most 1000 characters", "note"),
        (CardDetails(note="bell\a"), "note: control characters are not allowed", "note"),
        (CardDetails(source_id="s" * 129), "source_id: at most 128 characters", "source_id"),
        (CardDetails(source_id="two\nlines"), "source_id: control characters are not allowed", "source_id"),
        (CardDetails(ref_no="r" * 129), "ref_no: at most 128 characters", "ref_no"),
        (CardDetails(ref_no="tab\t"), "ref_no: control characters are not allowed", "ref_no"),
        (
            CardDetails(usable_from=datetime(2027, 1, 1)),
            "usable_from: give a time zone (e.g. 2027-01-01T00:00:00Z)",
            "usable_from",
        ),
        (
            CardDetails(expires_at=datetime(2027, 1, 1)),
            "expires_at: give a time zone (e.g. 2027-01-01T00:00:00Z)",
            "expires_at",
        ),
        (
            CardDetails(
                usable_from=datetime(2027, 1, 1, tzinfo=UTC), expires_at=datetime(2027, 1, 1, tzinfo=UTC)
            ),
            "expires_at: must be later than usable_from",
            "expires_at",
        ),
        (
            # 01:00 at UTC+2 is before midnight UTC
            CardDetails(
                usable_from=datetime(2027, 1, 1, tzinfo=UTC),
                expires_at=datetime(2027, 1, 1, 1, tzinfo=PLUS_TWO),
            ),
            "expires_at: must be later than usable_from",
            "expires_at",
        ),
    ],
)
def test_operator_fields_are_checked(details, message, field):
    assert _refusal(check_new_card, NewCard(PHYSICAL, details=details)) == (message, field)
    assert _refusal(check_edit, CardEdit("1", details=details)) == (message, field)


def test_limits_are_inclusive():
    details = CardDetails(note="n" * 1000, source_id="s" * 128, ref_no="r" * 128)
    request, _ = check_new_card(NewCard(PHYSICAL, details=details), TODAY)
    assert request.details == details


# --- an edit -----------------------------------------------------------------------------------


def test_an_edit_that_changes_nothing_is_refused():
    assert _refusal(check_edit, CardEdit("1")) == ("giftcard: nothing to change", "giftcard")


@pytest.mark.parametrize(
    "edit",
    [
        CardEdit("1", codes=PHYSICAL),
        CardEdit("1", revoke=frozenset({CodeType.EXTERNAL})),
        CardEdit("1", member_id="M1"),
        CardEdit("1", unlink_member=True),
        CardEdit("1", unlock_pin=True),
        CardEdit("1", details=CardDetails(note="n")),
        CardEdit("1", details=CardDetails(usable_from=datetime(2027, 1, 1, tzinfo=UTC))),
        CardEdit("1", details=CardDetails(expires_at=datetime(2027, 1, 1, tzinfo=UTC))),
        CardEdit("1", details=CardDetails(source_id="s")),
        CardEdit("1", details=CardDetails(ref_no="r")),
    ],
)
def test_any_one_change_makes_an_edit(edit):
    request, _ = check_edit(edit, TODAY)
    assert request.card_id == "1"


def test_an_edit_plans_its_codes_and_moves_its_times_to_utc():
    edit = CardEdit(
        "7",
        codes=CodeChanges(physical_code="phys-5678-1234"),
        details=CardDetails(expires_at=datetime(2027, 1, 1, 2, tzinfo=PLUS_TWO)),
    )
    request, planned = check_edit(edit, TODAY)
    assert planned == [PlannedCode(CodeType.PHYSICAL, "PHYS56781234", None, None, "physical_code")]
    assert request.details == CardDetails(expires_at=datetime(2027, 1, 1, tzinfo=UTC))
    assert request.details.expires_at is not None and request.details.expires_at.tzinfo is UTC


@pytest.mark.parametrize(
    "edit",
    [
        CardEdit("1", member_id="M1", unlink_member=True),
        CardEdit("1", codes=CodeChanges(add_personal_code=True), unlink_member=True),
    ],
)
def test_unlinking_cannot_be_combined_with_linking_or_a_personal_code(edit):
    assert _refusal(check_edit, edit) == (
        "unlink_member: cannot be combined with member_id or add_personal_code",
        "unlink_member",
    )


def test_an_edit_checks_the_member_id_first():
    assert _refusal(check_edit, CardEdit("1", member_id="", unlink_member=True)) == (
        "member_id: 1 to 64 letters, digits or . _ : @ -",
        "member_id",
    )
