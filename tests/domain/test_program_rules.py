"""What a program asks of its cards: values, loads after issue, ceiling, expiry, generated codes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.codes import ALPHABET
from app.domain.program_rules import (
    balance_ceiling,
    check_load,
    check_load_after_issue,
    check_value,
    daily_load_refused,
    entropy_bits,
    expires_at,
    expiry_moves_with_activity,
    generate_code,
    matches_format,
)
from app.entities import CodeFormat, Program
from app.enums import ExpiryKind
from app.errors import LimitExceededError

NOW = datetime(2027, 1, 1, tzinfo=UTC)


def program(**overrides: object) -> Program:
    values: dict[str, object] = {
        "id": 1,
        "store_id": "default",
        "code": "GC",
        "name": "Gift card",
        "currency": "USD",
        "code_format": CodeFormat("GC", 16, True),
        "denominations": (),
        "min_value": None,
        "max_value": None,
        "value_changes_allowed": True,
        "expiry_kind": ExpiryKind.NONE,
        "expiry_days": None,
        "max_balance": None,
        "max_daily_load": None,
        "is_default": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return dataclasses.replace(Program(**values), **overrides)  # type: ignore[arg-type]


def test_generated_codes_follow_the_format_and_their_check_character_validates():
    # given a format with a prefix and a check character
    code_format = CodeFormat("GC", 16, True)
    # when codes are generated
    codes = {generate_code(code_format) for _ in range(200)}
    # then each has the prefix, the length, the alphabet, and validates
    assert len(codes) == 200
    for code in codes:
        assert code.startswith("GC") and len(code) == 16
        assert set(code[2:]) <= set(ALPHABET)
        assert matches_format(code_format, code)


def test_a_mistyped_character_or_a_wrong_prefix_fails_the_format():
    code_format = CodeFormat("GC", 16, True)
    code = generate_code(code_format)
    changed = code[:5] + ALPHABET[(ALPHABET.index(code[5]) + 1) % len(ALPHABET)] + code[6:]
    assert not matches_format(code_format, changed)
    assert not matches_format(code_format, "XX" + code[2:])
    assert not matches_format(code_format, code[:-1])
    assert not matches_format(code_format, code[:4] + "0" + code[5:])  # a look-alike, never generated


def test_without_a_check_character_every_symbol_is_random():
    code_format = CodeFormat("", 13, False)
    code = generate_code(code_format)
    assert len(code) == 13 and set(code) <= set(ALPHABET)
    assert matches_format(code_format, code)
    assert entropy_bits(code_format) == 65


def test_entropy_counts_the_random_characters_only():
    assert entropy_bits(CodeFormat("GC", 16, True)) == 65  # 13 random characters
    assert entropy_bits(CodeFormat("GIFT", 16, True)) == 55
    assert entropy_bits(CodeFormat("ABCD", 4, True)) == 0


def test_denominations_allow_only_their_values():
    given = program(denominations=(1000, 2500))
    check_value(given, 2500)
    with pytest.raises(LimitExceededError) as refused:
        check_value(given, 2000)
    assert refused.value.limit == "denominations" and refused.value.field == "initial_value"
    assert "10.00, 25.00 USD" in refused.value.message


@pytest.mark.parametrize(("amount", "limit"), [(499, "min_value"), (10001, "max_value")])
def test_min_and_max_value_bound_the_issue_value(amount, limit):
    given = program(min_value=500, max_value=10000)
    check_value(given, 500)
    check_value(given, 10000)
    with pytest.raises(LimitExceededError) as refused:
        check_value(given, amount)
    assert refused.value.limit == limit


def test_a_fixed_value_program_refuses_loads_after_issue():
    check_load_after_issue(program())
    with pytest.raises(LimitExceededError) as refused:
        check_load_after_issue(program(value_changes_allowed=False))
    assert refused.value.limit == "value_changes_allowed" and refused.value.field == "amount"


def test_the_first_load_of_a_card_issued_without_value_is_its_issue():
    fixed = program(value_changes_allowed=False, denominations=(2500,))
    check_load(fixed, 2500, issued=False)  # taken, though the program fixes value
    for amount, issued, limit in ((1000, False, "denominations"), (2500, True, "value_changes_allowed")):
        with pytest.raises(LimitExceededError) as refused:
            check_load(fixed, amount, issued=issued)
        assert refused.value.limit == limit


def test_a_refused_daily_load_names_the_rule_and_the_limit():
    refused = daily_load_refused(program(max_daily_load=20000))
    assert (refused.limit, refused.field) == ("max_daily_load", "amount")
    assert refused.message == "amount: program GC loads at most 200.00 USD a day on a card"


def test_the_ceiling_is_the_lower_of_the_program_and_the_server():
    assert balance_ceiling(None, 5000) == 5000
    assert balance_ceiling(program(), 5000) == 5000
    assert balance_ceiling(program(max_balance=2000), 5000) == 2000
    assert balance_ceiling(program(max_balance=9000), 5000) == 5000


def test_expiry_counts_days_from_issue_or_last_activity():
    assert expires_at(program(), NOW) is None
    after_issue = program(expiry_kind=ExpiryKind.AFTER_ISSUE, expiry_days=1825)
    assert expires_at(after_issue, NOW) == NOW + timedelta(days=1825)
    assert not expiry_moves_with_activity(after_issue)
    after_activity = program(expiry_kind=ExpiryKind.AFTER_ACTIVITY, expiry_days=2000)
    assert expires_at(after_activity, NOW) == NOW + timedelta(days=2000)
    assert expiry_moves_with_activity(after_activity)
