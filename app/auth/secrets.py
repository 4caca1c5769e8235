"""Hashing of client secrets with passlib (argon2id), slow on purpose: call these off the event loop.
Secrets are long random strings, hashed as they are so that ``permissions.yaml`` can be checked
without any key (PINs are keyed values instead, see :mod:`app.domain.pins`)."""

from __future__ import annotations

import secrets
from functools import cache

from passlib.context import CryptContext

_context = CryptContext(schemes=["argon2"], argon2__type="ID")


def hash_client_secret(secret: str) -> str:
    return str(_context.hash(secret))


def is_client_secret_hash(value: str) -> bool:
    """True when ``value`` is a well-formed argon2 hash (what `giftcards client add` writes)."""
    try:  # an unknown scheme is a ValueError too
        _context.identify(value, resolve=True, required=True).from_string(value)
    except (ValueError, TypeError):
        return False
    return True


def verify_client_secret(secret: str, secret_hash: str | None) -> bool:
    """Check a client secret; with no hash (unknown client) spend the same time and say no."""
    if secret_hash is None:
        _context.verify(secret, dummy_client_secret_hash())
        return False
    return bool(_context.verify(secret, secret_hash))


@cache
def dummy_client_secret_hash() -> str:
    """A hash of a random secret nobody knows, made once per process (call it at start-up)."""
    return str(_context.hash(secrets.token_urlsafe(32)))
