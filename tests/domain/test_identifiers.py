"""Identifiers and operator text as callers pass them in (no database)."""

from __future__ import annotations

import pytest

from app.domain.identifiers import (
    MAX_CARD_ID,
    check_location_id,
    check_text,
    parse_card_id,
    validate_member_id,
)
from app.errors import BadUserInputError


@pytest.mark.parametrize(
    ("text", "number"), [("1", 1), ("0042", 42), ("2147483648", 2**31), (str(MAX_CARD_ID), MAX_CARD_ID)]
)
def test_a_card_id_is_a_positive_64_bit_integer(text, number):
    assert parse_card_id(text) == number


@pytest.mark.parametrize(
    "text", ["0", "-1", "1.0", " 1", "1e3", "", str(MAX_CARD_ID + 1), "\u0661", "12345678901234567890"]
)
def test_anything_else_is_refused_naming_the_field(text):
    with pytest.raises(BadUserInputError) as refused:
        parse_card_id(text, "giftcardId")
    assert refused.value.field == "giftcardId"
    assert refused.value.message == f"giftcardId: a gift card id is an integer from 1 to {MAX_CARD_ID}"


@pytest.mark.parametrize("member_id", ["M1", "a.b_c:d@e-f", "x" * 64])
def test_member_ids_of_64_safe_characters_pass_unchanged(member_id):
    assert validate_member_id(member_id) == member_id


@pytest.mark.parametrize("member_id", ["", "x" * 65, "has space", "ümlaut", "semi;colon"])
def test_other_member_ids_are_refused(member_id):
    with pytest.raises(BadUserInputError) as refused:
        validate_member_id(member_id, "filter.memberId")
    assert refused.value.field == "filter.memberId"
    assert refused.value.message == "filter.memberId: 1 to 64 letters, digits or . _ : @ -"


def test_text_up_to_its_limit_passes_and_none_is_no_text():
    check_text("x" * 10, "note", 10)
    check_text(None, "note", 0)
    check_text("two\nlines\tand a tab", "note", 100, multiline=True)


@pytest.mark.parametrize(
    ("text", "multiline", "message"),
    [
        ("x" * 11, False, "note: at most 10 characters"),
        ("a\nb", False, "note: control characters are not allowed"),
        ("nul\x00", True, "note: control characters are not allowed"),
        ("bell\x07", True, "note: control characters are not allowed"),
    ],
)
def test_text_too_long_or_with_control_characters_is_refused(text, multiline, message):
    with pytest.raises(BadUserInputError) as refused:
        check_text(text, "note", 10, multiline=multiline)
    assert (refused.value.field, refused.value.message) == ("note", message)


@pytest.mark.parametrize("location_id", [None, "SHOP-1", "x" * 64, "Kiosk 2 / Gate B", "東京駅"])
def test_locations_in_any_words_up_to_64_characters_pass(location_id):
    check_location_id(location_id)


@pytest.mark.parametrize(
    ("location_id", "message"),
    [
        ("x" * 65, "location_id: at most 64 characters"),
        ("till\x00", "location_id: control characters are not allowed"),
        ("till\t1", "location_id: control characters are not allowed"),
        ("", "location_id: 1 to 64 characters, not blank, no spaces at either end"),
        ("  ", "location_id: 1 to 64 characters, not blank, no spaces at either end"),
        (" till", "location_id: 1 to 64 characters, not blank, no spaces at either end"),
        ("till\u3000", "location_id: control characters are not allowed"),
    ],
)
def test_other_locations_are_refused(location_id, message):
    with pytest.raises(BadUserInputError) as refused:
        check_location_id(location_id)
    assert (refused.value.field, refused.value.message) == ("location_id", message)
