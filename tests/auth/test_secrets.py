"""PIN hashing: argon2id over a peppered PIN."""

from __future__ import annotations

from app.auth.secrets import PinHasher


def test_pin_hash_verifies_only_the_right_pin_and_pepper():
    hasher = PinHasher(b"p" * 32)
    pin_hash = hasher.hash("4321")
    assert pin_hash.startswith("$argon2id$") and "4321" not in pin_hash
    assert hasher.verify("4321", pin_hash)
    assert not hasher.verify("4322", pin_hash)
    assert not PinHasher(b"q" * 32).verify("4321", pin_hash)  # the pepper is part of the secret


def test_a_missing_hash_never_verifies():
    assert not PinHasher(b"p" * 32).verify("4321", None)
