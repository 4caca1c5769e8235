"""Reserved codes: the Luhn mod 32 check character and what a generated code looks like."""

from __future__ import annotations

import math
from itertools import permutations

import pytest

from app.domain.codes import ALPHABET, validate_code
from app.domain.reservations import (
    RANDOM_LENGTH,
    RESERVED_CODE_LENGTH,
    check_character,
    generate_reserved_code,
)

# Luhn mod N's one blind spot: swapping the first and last symbols of the alphabet.
BLIND_SWAP = {ALPHABET[0], ALPHABET[-1]}


def has_valid_check_character(code: str) -> bool:
    """True when the last symbol of ``code`` is the check character of the rest."""
    return len(code) >= 2 and set(code) <= set(ALPHABET) and code[-1] == check_character(code[:-1])


def _swap(code: str, at: int) -> str:
    return code[:at] + code[at + 1] + code[at] + code[at + 2 :]


def test_known_vector():
    # Worked by hand: from the right, doubled symbols are folded to their base-32 digit sum.
    assert check_character("2") == "2"
    assert check_character("3") == ALPHABET[(32 - 2) % 32]  # "3" is 1, doubled 2 → check 30
    assert has_valid_check_character("3" + ALPHABET[30])


def test_generated_codes_have_14_symbols_65_random_bits_and_a_valid_check_character():
    codes = [generate_reserved_code() for _ in range(200)]
    assert RESERVED_CODE_LENGTH == 14 and RANDOM_LENGTH * math.log2(len(ALPHABET)) >= 64
    for code in codes:
        assert len(code) == RESERVED_CODE_LENGTH and set(code) <= set(ALPHABET)
        assert has_valid_check_character(code)
        assert validate_code(code, "physicalCode") == code  # usable as a PHYSICAL code as it is
    assert len(set(codes)) == len(codes)


def test_every_single_changed_symbol_is_detected():
    for code in (generate_reserved_code() for _ in range(20)):
        for position in range(len(code)):
            for symbol in ALPHABET:
                if symbol != code[position]:
                    changed = code[:position] + symbol + code[position + 1 :]
                    assert not has_valid_check_character(changed), (code, position, symbol)


@pytest.mark.parametrize("position", range(RANDOM_LENGTH))  # the last pair includes the check symbol
def test_every_swap_of_two_adjacent_different_symbols_is_detected(position):
    # given every ordered pair of different symbols at this position of an otherwise random body
    body = generate_reserved_code()[:RANDOM_LENGTH]
    for first, second in permutations(ALPHABET, 2):
        code = body[:position] + first + second + body[position + 2 :]
        code = code[:RANDOM_LENGTH] + check_character(code[:RANDOM_LENGTH])
        pair = {code[position], code[position + 1]}  # at the end, the second is the check symbol
        if len(pair) == 1 or pair == BLIND_SWAP:
            continue
        # when the two are swapped, then the check fails
        assert not has_valid_check_character(_swap(code, position)), (code, position)


def test_the_one_undetected_swap_is_first_and_last_symbol_of_the_alphabet():
    # Documented limit of Luhn mod N (the base-32 twin of 09 ↔ 90 in base 10).
    body = "A" * (RANDOM_LENGTH - 2) + ALPHABET[0] + ALPHABET[-1]
    code = body + check_character(body)
    assert has_valid_check_character(_swap(code, RANDOM_LENGTH - 2))


@pytest.mark.parametrize("code", ["", "2", "ABCDEFGHJKLMN0", "abcdefghjklmnp", "ABCDEFGHJKLM-P"])
def test_malformed_codes_are_invalid(code):
    assert not has_valid_check_character(code)
