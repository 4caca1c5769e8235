"""PIN values: HMAC-SHA256 of code id and PIN under a keyring, wrapped on rotation, argon2 legacy."""

from __future__ import annotations

import base64

import pytest

from app.domain.pins import PinKeys, StoredPin
from app.errors import ConfigurationError
from tests.conftest import legacy_pin_hash

OLD, NEW, PEPPER = b"o" * 32, b"n" * 32, b"p" * 32


def test_a_pin_verifies_only_itself_on_its_own_code():
    keys = PinKeys({"k1": OLD})
    stored = keys.hash(7, "4321")
    assert stored.key_ids == "k1" and "4321" not in stored.value
    assert len(base64.b64decode(stored.value)) == 32
    assert keys.verify(7, "4321", stored).ok
    assert not keys.verify(7, "4322", stored).ok
    assert not keys.verify(8, "4321", stored).ok  # bound to the code: no table of PIN values
    assert not PinKeys({"k1": NEW}).verify(7, "4321", stored).ok  # the key is the secret


def test_the_same_pin_on_two_codes_gives_two_values():
    keys = PinKeys({"k1": OLD})
    assert keys.hash(1, "0000").value != keys.hash(2, "0000").value


def test_twelve_digit_pins_and_leading_zeros_are_exact():
    keys = PinKeys({"k1": OLD})
    stored = keys.hash(3, "012345678901")
    assert keys.verify(3, "012345678901", stored).ok
    assert not keys.verify(3, "12345678901", stored).ok


def test_a_right_pin_under_the_current_key_needs_no_replacement():
    keys = PinKeys({"k1": OLD})
    assert keys.verify(7, "4321", keys.hash(7, "4321")).replacement is None


def test_rotation_wraps_without_the_pin_and_verification_follows_the_chain():
    stored = PinKeys({"k1": OLD}).hash(7, "4321")
    rotated = PinKeys({"k2": NEW, "k1": OLD})
    wrapped = rotated.wrap(stored)
    assert wrapped is not None and wrapped.key_ids == "k1,k2" and wrapped.value != stored.value
    assert rotated.wrap(wrapped) is None  # already under the current key
    check = rotated.verify(7, "4321", wrapped)
    assert check.ok and check.replacement == rotated.hash(7, "4321")  # a right PIN re-keys it directly
    assert not rotated.verify(7, "1234", wrapped).ok


def test_a_chain_needs_every_key_it_names():
    wrapped = PinKeys({"k2": NEW, "k1": OLD}).wrap(PinKeys({"k1": OLD}).hash(7, "4321"))
    assert wrapped is not None
    with pytest.raises(ConfigurationError, match="'k1'"):
        PinKeys({"k2": NEW}).verify(7, "4321", wrapped)


def test_legacy_argon2_hashes_verify_with_the_pepper_and_are_replaced():
    keys = PinKeys({"k1": OLD}, pepper=PEPPER)
    legacy = StoredPin(legacy_pin_hash(PEPPER, "4321"), None)
    assert legacy.is_legacy and legacy.value.startswith("$argon2id$")
    check = keys.verify(7, "4321", legacy)
    assert check.ok and check.replacement == keys.hash(7, "4321")
    assert not keys.verify(7, "4322", legacy).ok
    assert PinKeys({"k1": OLD}).wrap(legacy) is None  # rotation cannot move it without the PIN
    with pytest.raises(ConfigurationError, match="GIFTCARDS_PIN_PEPPER"):
        PinKeys({"k1": OLD}).verify(7, "4321", legacy)
