"""Codes: normalising, validating, generating, sealing and masking."""

from __future__ import annotations

import base64
import math
from collections import Counter

import pytest

from app.config import Settings
from app.domain.codes import (
    ALPHABET,
    PERSONAL_CODE_LENGTH,
    CodeVault,
    generate_code,
    mask,
    normalise,
    plaintext_length,
    validate_code,
    validate_pin,
)
from app.enums import CodeType
from app.errors import BadUserInputError, ConfigurationError

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()


def _vault(keys: str = f"k1:{KEY_A}") -> CodeVault:
    return CodeVault.from_settings(Settings(code_lookup_key=KEY_A, code_encryption_keys=keys))


def test_normalise_ignores_case_spaces_and_dashes():
    assert normalise(" gc-4928 8330 ") == "GC49288330"


@pytest.mark.parametrize("code", ["abc", "A" * 65, "GC_4928", "GC.4928", "ÄBCDE", "", "----"])
def test_invalid_codes_are_refused_without_echo(code):
    with pytest.raises(BadUserInputError) as caught:
        validate_code(code, "physicalCode")
    assert caught.value.field == "physicalCode"
    assert code.strip("-") == "" or code not in caught.value.message


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", " 1234", "١٢٣٤"])
def test_invalid_pins(pin):
    with pytest.raises(BadUserInputError):
        validate_pin(pin, "physicalPin")


def test_generated_codes_have_enough_entropy_and_no_look_alikes():
    assert math.log2(len(ALPHABET)) * PERSONAL_CODE_LENGTH >= 100
    assert not set("01OI") & set(ALPHABET)
    codes = [generate_code() for _ in range(2000)]
    assert len(set(codes)) == len(codes)
    assert all(len(code) == PERSONAL_CODE_LENGTH and validate_code(code, "c") == code for code in codes)
    # every symbol turns up, none dominates (a weak check against a broken generator)
    counts = Counter("".join(codes))
    assert set(counts) == set(ALPHABET)
    assert max(counts.values()) < 2 * min(counts.values())


def test_seal_and_open_round_trip_without_plaintext():
    vault = _vault()
    sealed = vault.seal("GC49288330", CodeType.PHYSICAL)
    assert b"GC49288330" not in sealed.ciphertext
    assert sealed.lookup_hash == vault.lookup_hashes("GC49288330")[0]
    assert (sealed.key_id, sealed.last4) == ("k1", "8330")
    assert plaintext_length(sealed.ciphertext) == 10
    assert vault.open(sealed.ciphertext, sealed.key_id, "PHYSICAL") == "GC49288330"
    # the same code seals differently each time (random nonce)
    assert vault.seal("GC49288330", CodeType.PHYSICAL).ciphertext != sealed.ciphertext


def test_ciphertext_is_bound_to_its_code_type():
    vault = _vault()
    sealed = vault.seal("GC49288330", CodeType.PHYSICAL)
    with pytest.raises(ConfigurationError):
        vault.open(sealed.ciphertext, sealed.key_id, "EXTERNAL")


def test_old_keys_keep_opening_after_a_new_key_is_first():
    old = _vault(f"k1:{KEY_A}").seal("GC49288330", CodeType.PHYSICAL)
    rotated = _vault(f"k2:{KEY_B},k1:{KEY_A}")
    assert rotated.active_key_id == "k2"
    assert rotated.open(old.ciphertext, "k1", "PHYSICAL") == "GC49288330"
    assert rotated.seal("X1234", CodeType.PHYSICAL).key_id == "k2"


@pytest.mark.parametrize("keys", ["nokeyid", f"bad id:{KEY_A}", "k1:notbase64!", "k1:" + KEY_A[:20]])
def test_bad_keyrings_are_configuration_errors(keys):
    with pytest.raises(ConfigurationError):
        _vault(keys)


def test_mask_keeps_last_four_and_masks_short_codes_whole():
    assert mask("STUV", 20) == "*" * 16 + "STUV"
    assert mask("9999", 8) == "********"
    assert mask("0012", 12) == "********0012"
