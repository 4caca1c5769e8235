"""Client secrets: argon2id through passlib."""

from __future__ import annotations

from app.auth.secrets import hash_client_secret, is_client_secret_hash, verify_client_secret


def test_a_client_secret_verifies_only_itself():
    secret_hash = hash_client_secret("s3cret-value")
    assert secret_hash.startswith("$argon2id$") and is_client_secret_hash(secret_hash)
    assert verify_client_secret("s3cret-value", secret_hash)
    assert not verify_client_secret("s3cret-valuf", secret_hash)


def test_an_unknown_client_never_verifies():
    assert not verify_client_secret("s3cret-value", None)
