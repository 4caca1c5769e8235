"""Codes and PINs at their limits, and masking on each side of SHORTEST_PARTLY_MASKED."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from app.config import Settings
from app.domain.codes import (
    MASK_CHARACTER,
    MAX_CODE_LENGTH,
    MIN_CODE_LENGTH,
    SHORTEST_PARTLY_MASKED,
    CodeVault,
    lookup_keyring,
    mask,
    parse_keyring,
    validate_code,
    validate_pin,
)
from app.enums import CodeType
from app.errors import BadUserInputError, ConfigurationError

KEY_A, KEY_B = (bytes([n]) * 32 for n in (7, 9))
TEXT_A, TEXT_B = (base64.b64encode(key).decode() for key in (KEY_A, KEY_B))


def test_masking_starts_to_show_the_last_four_at_twelve_characters():
    assert SHORTEST_PARTLY_MASKED == 12 and MASK_CHARACTER == "*"
    assert mask("HARS", 11) == "*" * 11
    assert mask("HARS", 12) == "*" * 8 + "HARS"
    assert mask("HARS", 13) == "*" * 9 + "HARS"


@pytest.mark.parametrize("length", [MIN_CODE_LENGTH, 5, 10])
def test_short_codes_are_masked_whole(length):
    assert mask("WXYZ"[-min(4, length) :], length) == MASK_CHARACTER * length


@pytest.mark.parametrize("length", [MIN_CODE_LENGTH, 12, MAX_CODE_LENGTH])
def test_codes_of_every_allowed_length_are_accepted(length):
    code = ("AB2" * MAX_CODE_LENGTH)[:length]
    assert validate_code(code.lower(), "physicalCode") == code


@pytest.mark.parametrize("length", [MIN_CODE_LENGTH - 1, MAX_CODE_LENGTH + 1])
def test_codes_just_outside_the_lengths_are_refused(length):
    with pytest.raises(BadUserInputError) as refused:
        validate_code("Z" * length, "externalCode")
    assert refused.value.field == "externalCode"
    assert refused.value.message == (
        f"externalCode: a code is {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} letters and digits "
        "(spaces and dashes are ignored)"
    )


def test_a_four_character_code_counts_without_spaces_and_dashes():
    assert validate_code(" a-b 1-2 ", "code") == "AB12"
    with pytest.raises(BadUserInputError):
        validate_code("a-b-1", "code")


def test_spaces_and_dashes_are_ignored_up_to_four_times_the_longest_code():
    padded = "-" * (3 * MAX_CODE_LENGTH) + "A" * MAX_CODE_LENGTH
    assert validate_code(padded, "code") == "A" * MAX_CODE_LENGTH
    with pytest.raises(BadUserInputError, match=f"at most {MAX_CODE_LENGTH}") as refused:
        validate_code("-" + padded, "code2")
    assert refused.value.field == "code2"


@pytest.mark.parametrize("pin", ["1234", "12345678", "123456789012"])
def test_pins_of_four_to_twelve_digits_are_accepted(pin):
    assert validate_pin(pin, "pin") == pin


@pytest.mark.parametrize("pin", ["123", "1234567890123"])
def test_pins_just_outside_the_lengths_are_refused_naming_the_field(pin):
    with pytest.raises(BadUserInputError, match="4 to 12 digits") as refused:
        validate_pin(pin, "physicalPin")
    assert refused.value.field == "physicalPin"


# --- keys: what an operator is told, and digests that stored rows depend on ----------------------


def _refused(call) -> str:
    with pytest.raises(ConfigurationError) as refused:
        call()
    return str(refused.value)


def test_a_single_lookup_key_is_a_ring_of_one_named_in_its_errors():
    assert lookup_keyring(Settings(code_lookup_key=TEXT_A)) == {"lk1": KEY_A}
    assert _refused(lambda: lookup_keyring(Settings(code_lookup_key="c2hvcnQ="))) == (
        "GIFTCARDS_CODE_LOOKUP_KEY must decode to 32 bytes, got 5"
    )


def test_a_lookup_key_and_ring_together_or_neither_are_refused():
    both = Settings(code_lookup_key=TEXT_A, code_lookup_keys=f"k1:{TEXT_B}")
    assert _refused(lambda: lookup_keyring(both)) == (
        "set GIFTCARDS_CODE_LOOKUP_KEYS or GIFTCARDS_CODE_LOOKUP_KEY, not both "
        "(GIFTCARDS_CODE_LOOKUP_KEY=KEY is GIFTCARDS_CODE_LOOKUP_KEYS=lk1:KEY)"
    )
    assert _refused(lambda: lookup_keyring(Settings())) == "code keys are not configured"
    assert _refused(lambda: CodeVault.from_settings(Settings(code_lookup_key=TEXT_A))) == (
        "code keys are not configured"
    )


@pytest.mark.parametrize(("lookup", "ring"), [({}, {"k1": KEY_A}), ({"l1": KEY_A}, {})])
def test_a_vault_needs_both_rings(lookup, ring):
    assert _refused(lambda: CodeVault(lookup, ring)) == "code keys are not configured"


def test_a_keyring_entry_splits_at_its_first_colon():
    assert _refused(lambda: parse_keyring("RING", f"k1:{TEXT_A}:x")) == "RING (k1) is not valid base64"
    assert _refused(lambda: parse_keyring("RING", f"k 1:{TEXT_A}")).startswith(
        "RING must be 'id:base64key[,id:base64key…]' with ids of 1 to 32 letters, digits, '_', '.' or '-'"
    )


def test_lookup_hashes_and_keyed_digests_are_hmac_sha256_of_a_fixed_message():
    # stored rows hold these: any change of message or algorithm strands every code and key
    vault = CodeVault({"l2": KEY_B, "l1": KEY_A}, {"k1": KEY_A})
    expected = [hmac.new(key, b"GC4928", hashlib.sha256).digest() for key in (KEY_B, KEY_A)]
    assert vault.lookup_hashes("GC4928")[0] == expected[0]
    assert vault.lookup_hashes("GC4928") == tuple(expected)
    keyed = [hmac.new(key, b"purpose\0data", hashlib.sha256).digest() for key in (KEY_B, KEY_A)]
    assert vault.keyed_digests(b"purpose", b"data") == tuple(keyed)
    assert vault.keyed_digests(b"purpose", b"data")[0] == keyed[0]


def test_opening_with_a_missing_or_wrong_key_names_the_key_id_only():
    vault = CodeVault({"l1": KEY_A}, {"k1": KEY_A})
    other = CodeVault({"l1": KEY_A}, {"k1": KEY_B})
    sealed = vault.seal("GC4928", CodeType.PHYSICAL)
    key_id, blob = vault.seal_blob(b"secret", b"context")

    assert _refused(lambda: vault.open(sealed.ciphertext, "k9", "PHYSICAL")) == (
        "code key 'k9' is not configured"
    )
    assert _refused(lambda: other.open(sealed.ciphertext, "k1", "PHYSICAL")) == (
        "a code does not decrypt with key 'k1'"
    )
    assert _refused(lambda: vault.open_blob("k9", blob, b"context")) == "code key 'k9' is not configured"
    assert _refused(lambda: other.open_blob(key_id, blob, b"context")) == (
        "a stored secret does not decrypt with key 'k1'"
    )
    assert vault.open_blob(key_id, blob, b"context") == b"secret"
