"""Hashing of PINs with passlib (argon2id), each PIN peppered first.

The pepper is an HMAC key held outside the database, so a stolen database alone cannot be used to
brute-force the (short) PINs. Hashing is slow on purpose: call these off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac

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

