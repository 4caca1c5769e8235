"""Money at its edges: the largest value in both signs, in currencies of every exponent."""

from __future__ import annotations

import pytest

from app.domain.money import MAX_MINOR_UNITS, check_amount, check_currency, format_amount, parse_amount
from app.errors import BadUserInputError


@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD"])
@pytest.mark.parametrize("sign", [1, -1], ids=["credit", "debit"])
def test_the_largest_value_is_accepted_and_one_minor_unit_more_refused(currency, sign):
    # given the largest amount one value may hold, written in the currency's decimals
    largest = format_amount(sign * MAX_MINOR_UNITS, currency)
    beyond = format_amount(sign * (MAX_MINOR_UNITS + 1), currency)

    # then it parses, and one minor unit more is refused naming the field
    assert parse_amount(largest, currency) == sign * MAX_MINOR_UNITS
    with pytest.raises(BadUserInputError, match="too large") as refused:
        parse_amount(beyond, currency, field="capture")
    assert refused.value.field == "capture"


def test_the_cap_is_a_whole_number_of_minor_units_that_fits_a_bigint():
    assert isinstance(MAX_MINOR_UNITS, int)
    assert 10**12 <= MAX_MINOR_UNITS < 2**63 // 2  # room for a balance plus one more value


@pytest.mark.parametrize(("text", "currency"), [("0.001", "USD"), ("0.1", "JPY"), ("0.0001", "KWD")])
def test_more_decimals_than_the_currency_has_names_the_currency_and_field(text, currency):
    with pytest.raises(BadUserInputError, match=f"{currency} allows at most") as refused:
        parse_amount(text, currency, field="amount2")
    assert refused.value.field == "amount2"


@pytest.mark.parametrize("text", ["9999999999999999.999999", "-0.000001", "+12"])
def test_syntax_alone_is_checked_whatever_the_currency(text):
    assert str(check_amount(text)) == text.lstrip("+")


@pytest.mark.parametrize("text", ["1.", ".5", "1.1234567", "12345678901234567", "--1", "1_000"])
def test_syntax_refusals_name_the_field(text):
    with pytest.raises(BadUserInputError, match="not a decimal amount") as refused:
        check_amount(text, field="amount3")
    assert refused.value.field == "amount3"


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (-5, "USD", "-0.05"),
        (-100, "USD", "-1.00"),
        (-7, "JPY", "-7"),
        (-1, "KWD", "-0.001"),
        (123456, "XYZ", "1234.56"),
    ],
    ids=["cents", "whole", "no decimals", "three decimals", "unknown currency shown with two"],
)
def test_format_signs_and_pads(minor, currency, text):
    assert format_amount(minor, currency) == text


def test_a_currency_refusal_names_the_field_given_or_currency():
    with pytest.raises(BadUserInputError) as default:
        check_currency("usd")
    with pytest.raises(BadUserInputError) as named:
        check_currency("ABC", field="giftcard.currency")
    assert (default.value.field, named.value.field) == ("currency", "giftcard.currency")
    assert str(named.value).startswith("giftcard.currency: ")
    assert check_currency("KWD", field="x") == "KWD"


def test_a_syntax_refusal_while_parsing_names_the_field_given():
    with pytest.raises(BadUserInputError, match=r"^capture: not a decimal amount") as refused:
        parse_amount("1,5", "EUR", field="capture")
    assert refused.value.field == "capture"
