"""Hashing of PINs and client secrets with passlib (argon2id); each PIN is peppered first.

The pepper is an HMAC key held outside the database, so a stolen database alone cannot be used to
brute-force the (short) PINs. Client secrets are long random strings and are hashed as they are, so
that ``permissions.yaml`` can be checked without any key. Hashing is slow on purpose: call these off
the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache

from passlib.context import CryptContext

from app.config import Settings, decode_key
from app.errors import ConfigurationError

_context = CryptContext(schemes=["argon2"], argon2__type="ID")


class PinHasher:
    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper
        self._dummy_hash: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PinHasher:
        if settings.pin_pepper is None:
            raise ConfigurationError("GIFTCARDS_PIN_PEPPER is not configured")
        return cls(decode_key("GIFTCARDS_PIN_PEPPER", settings.pin_pepper.get_secret_value()))

    def _peppered(self, pin: str) -> str:
        return hmac.new(self._pepper, pin.encode(), hashlib.sha256).hexdigest()

    def hash(self, pin: str) -> str:
        return _context.hash(self._peppered(pin))

    def verify(self, pin: str, pin_hash: str | None) -> bool:
        if pin_hash is None:
            # Verify against a throwaway hash so that "no such code" costs what a wrong PIN costs.
            if self._dummy_hash is None:
                self._dummy_hash = _context.hash(self._peppered("0000"))
            _context.verify(self._peppered(pin), self._dummy_hash)
            return False
        return bool(_context.verify(self._peppered(pin), pin_hash))


def hash_client_secret(secret: str) -> str:
    return _context.hash(secret)


def is_client_secret_hash(value: str) -> bool:
    """True when ``value`` is a well-formed argon2 hash (what `giftcards client add` writes)."""
    handler = _context.identify(value, resolve=True, required=False)
    if handler is None:
        return False
    try:
        handler.from_string(value)
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
    return _context.hash(secrets.token_urlsafe(32))
