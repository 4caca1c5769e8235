"""A program as a caller describes it, checked field by field: each refusal names its field."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app.domain.program_input import ProgramInput, ProgramLimits, input_of, program_columns
from app.entities import CodeFormat
from app.enums import ExpiryKind
from app.errors import BadUserInputError
from tests.domain.test_program_rules import program

LIMITS = ProgramLimits(max_balance=1000, min_expiry_days=1825)  # at most 1,000.00 USD a card
GOOD = ProgramInput(code="GC", name="Gift card", currency="USD", code_format=CodeFormat("GC", 16, True))


def refusal(**changes: object) -> BadUserInputError:
    with pytest.raises(BadUserInputError) as refused:
        program_columns(dataclasses.replace(GOOD, **changes), LIMITS)  # type: ignore[arg-type]
    return refused.value


def test_a_plain_program_becomes_its_columns():
    columns = program_columns(GOOD, LIMITS)
    assert columns == {
        "code": "GC",
        "name": "Gift card",
        "currency": "USD",
        "code_prefix": "GC",
        "code_length": 16,
        "code_check_character": True,
        "denominations": None,
        "min_value": None,
        "max_value": None,
        "value_changes_allowed": True,
        "expiry_kind": "NONE",
        "expiry_days": None,
        "max_balance": None,
        "max_daily_load": None,
        "is_default": False,
    }


def test_amounts_are_read_in_the_programs_currency():
    columns = program_columns(
        dataclasses.replace(
            GOOD, denominations=("25.00", "10.00"), max_balance="500.00", max_daily_load="200"
        ),
        LIMITS,
    )
    assert json.loads(columns["denominations"]) == [1000, 2500]
    assert (columns["max_balance"], columns["max_daily_load"]) == (50000, 20000)


def test_a_format_under_64_bits_is_refused_with_its_entropy():
    error = refusal(code_format=CodeFormat("GC", 15, True))  # 12 random characters: 60 bits
    assert error.field == "code_format"
    assert error.message.startswith("codeFormat: leaves 60 bits of entropy; at least 64 needed")


def test_the_smallest_format_of_64_bits_is_accepted():
    assert program_columns(dataclasses.replace(GOOD, code_format=CodeFormat("", 13, False)), LIMITS)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "gc"}, "code"),
        ({"code": "G" * 17}, "code"),
        ({"code": ""}, "code"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"currency": "XXX"}, "currency"),
        ({"code_format": CodeFormat("G0", 20, True)}, "code_format.prefix"),
        ({"code_format": CodeFormat("gc", 20, True)}, "code_format.prefix"),
        ({"code_format": CodeFormat("", 65, True)}, "code_format.length"),
        ({"code_format": CodeFormat("", 3, False)}, "code_format.length"),
        ({"denominations": ("10.00",), "min_value": "5.00"}, "denominations"),
        ({"denominations": ()}, "denominations"),
        ({"denominations": ("10.00", "10")}, "denominations"),
        ({"denominations": ("0.00",)}, "denominations"),
        ({"denominations": ("-5.00",)}, "denominations"),
        ({"denominations": ("10.005",)}, "denominations"),
        ({"denominations": ("1000.01",)}, "denominations"),
        ({"denominations": ("ten",)}, "denominations"),
        ({"min_value": "0"}, "min_value"),
        ({"min_value": "20.00", "max_value": "10.00"}, "min_value"),
        ({"max_value": "2000.00"}, "max_value"),
        ({"max_balance": "1000.01"}, "max_balance"),
        ({"max_balance": "0"}, "max_balance"),
        ({"max_balance": "100.00", "max_value": "100.01"}, "max_value"),
        ({"max_balance": "100.00", "denominations": ("150.00",)}, "denominations"),
        ({"max_daily_load": "-1.00"}, "max_daily_load"),
        ({"expiry_kind": ExpiryKind.NONE, "expiry_days": 2000}, "expiry.days"),
        ({"expiry_kind": ExpiryKind.AFTER_ISSUE}, "expiry.days"),
        ({"expiry_kind": ExpiryKind.AFTER_ISSUE, "expiry_days": 1824}, "expiry.days"),
        ({"expiry_kind": ExpiryKind.AFTER_ACTIVITY, "expiry_days": 36501}, "expiry.days"),
    ],
)
def test_each_bad_setting_is_refused_naming_its_field(changes, field):
    assert refusal(**changes).field == field


def test_the_shortest_expiry_is_the_configured_minimum():
    given = dataclasses.replace(GOOD, expiry_kind=ExpiryKind.AFTER_ISSUE, expiry_days=30)
    assert refusal(expiry_kind=ExpiryKind.AFTER_ISSUE, expiry_days=30).message.startswith("expiry.days: 1825")
    columns = program_columns(given, ProgramLimits(max_balance=1000, min_expiry_days=30))
    assert (columns["expiry_kind"], columns["expiry_days"]) == ("AFTER_ISSUE", 30)


def test_the_ceiling_is_in_the_currencys_own_units():
    # 1,000 major units: 1000 JPY has no decimals, 1000.000 KWD has three
    jpy = dataclasses.replace(GOOD, currency="JPY", max_balance="1000")
    assert program_columns(jpy, LIMITS)["max_balance"] == 1000
    assert refusal(currency="JPY", max_balance="1000.5").field == "max_balance"
    kwd = dataclasses.replace(GOOD, currency="KWD", max_balance="999.999")
    assert program_columns(kwd, LIMITS)["max_balance"] == 999999


def test_a_program_described_again_gives_the_same_columns():
    # given a stored program with every kind of setting
    stored = program(
        denominations=(1000, 2500),
        value_changes_allowed=False,
        expiry_kind=ExpiryKind.AFTER_ACTIVITY,
        expiry_days=1900,
        max_balance=50000,
        max_daily_load=20000,
    )
    # when it is described as input and checked again
    columns = program_columns(input_of(stored), LIMITS)
    # then nothing changes
    assert json.loads(columns["denominations"]) == [1000, 2500]
    assert columns["expiry_days"] == 1900 and columns["max_daily_load"] == 20000
    assert columns["value_changes_allowed"] is False and columns["is_default"] is True
