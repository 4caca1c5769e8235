"""Money: decimal strings ↔ integer minor units, per currency exponent."""

from __future__ import annotations

import pytest

from app.domain.money import check_currency, format_amount, minor_units, parse_amount
from app.errors import BadUserInputError


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("25.00", "USD", 2500),
        ("-6.49", "USD", -649),
        ("6.5", "EUR", 650),
        ("100", "JPY", 100),
        ("0.005", "KWD", 5),
        ("+1", "USD", 100),
    ],
)
def test_parse(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1.001", "USD"),
        ("1.5", "JPY"),
        ("abc", "USD"),
        ("1e3", "USD"),
        ("", "USD"),
        ("1,00", "EUR"),
        ("NaN", "USD"),
        ("99999999999999999", "USD"),
        (" 1", "USD"),
    ],
)
def test_parse_refuses(text, currency):
    with pytest.raises(BadUserInputError) as caught:
        parse_amount(text, currency)
    assert caught.value.field == "amount"


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (2500, "USD", "25.00"),
        (-649, "USD", "-6.49"),
        (5, "USD", "0.05"),
        (0, "USD", "0.00"),
        (500, "JPY", "500"),
        (5, "KWD", "0.005"),
    ],
)
def test_format(minor, currency, text):
    assert format_amount(minor, currency) == text


def test_unknown_currency_is_refused_without_echoing_it():
    with pytest.raises(BadUserInputError, match="ISO 4217") as refused:
        check_currency("XQZ")
    assert "XQZ" not in str(refused.value)


@pytest.mark.parametrize(
    ("major", "currency", "minor"), [(10, "USD", 1000), (10, "JPY", 10), (10, "KWD", 10_000)]
)
def test_minor_units_of_whole_major_units(major, currency, minor):
    assert minor_units(major, currency) == minor
