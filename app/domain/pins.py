"""PINs as banks keep them: HMAC-SHA256 of code id and PIN under a keyring held outside the database
(``GIFTCARDS_PIN_KEYS``), checked in constant time. A slow hash buys nothing against 10^4 PINs once
the key leaks; the key and the online lockout protect them.

A value keeps the ids of the keys that made it, innermost first: rotation wraps it under a new key
without the PIN (HMAC(new, old value)). Argon2 rows from before keyed PINs (peppered with
``GIFTCARDS_PIN_PEPPER``) still verify, and a right PIN replaces them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from passlib.context import CryptContext

from app.auth.gate import VerificationGate
from app.config import Settings
from app.domain.codes import parse_keyring, staged_key_ids
from app.errors import ConfigurationError
from app.keyrings import decode_key

KEY_ID_SEPARATOR = ","
LEGACY_WAIT_SECONDS = 2.0  # for an argon2 slot, at most
_argon2 = CryptContext(schemes=["argon2"], argon2__type="ID")


@dataclass(frozen=True, slots=True)
class StoredPin:
    """A PIN at rest: base64 of the HMAC and its key chain, innermost first (or argon2 and None)."""

    value: str
    key_ids: str | None

    @property
    def is_legacy(self) -> bool:
        return self.key_ids is None

    @property
    def chain(self) -> tuple[str, ...]:
        return () if self.key_ids is None else tuple(self.key_ids.split(KEY_ID_SEPARATOR))


@dataclass(frozen=True, slots=True)
class PinCheck:
    """The outcome of a PIN check; ``replacement`` is set when a right PIN's stored value should
    move to the current key alone (a legacy hash, or a chain left by rotation)."""

    ok: bool
    replacement: StoredPin | None = None


class PinKeys:
    """Keyed PIN values under a keyring; the first key is current."""

    def __init__(
        self, keyring: dict[str, bytes], pepper: bytes | None = None, gate: VerificationGate | None = None
    ) -> None:
        if not keyring:
            raise ConfigurationError("GIFTCARDS_PIN_KEYS holds no key")
        self._keys = keyring
        self.staged_key_ids: frozenset[str] = frozenset()  # known, not yet current
        self.current_key_id = next(iter(keyring))
        self.key_ids = tuple(keyring)
        self._pepper = pepper
        self._gate = gate or VerificationGate()  # bounds argon2 work (legacy PINs only)

    @classmethod
    def from_settings(cls, settings: Settings, gate: VerificationGate | None = None) -> PinKeys:
        if settings.pin_keys is None:
            raise ConfigurationError("GIFTCARDS_PIN_KEYS is not configured")
        text = settings.pin_keys.get_secret_value()
        pepper = settings.pin_pepper
        keys = cls(
            parse_keyring("GIFTCARDS_PIN_KEYS", text),
            None if pepper is None else decode_key("GIFTCARDS_PIN_PEPPER", pepper.get_secret_value()),
            gate,
        )
        keys.staged_key_ids = staged_key_ids(text)
        return keys

    @property
    def has_pepper(self) -> bool:
        return self._pepper is not None

    def _digest(self, key_id: str, data: bytes) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            raise ConfigurationError(
                f"a PIN is stored under key {key_id!r}, which GIFTCARDS_PIN_KEYS does not hold; put it "
                "back (after the current key) and see `giftcards keys status`"
            )
        return hmac.new(key, data, hashlib.sha256).digest()

    def hash(self, code_id: int, pin: str) -> StoredPin:
        """The value to store for ``pin`` on code ``code_id``, under the current key."""
        digest = self._digest(self.current_key_id, f"{code_id}:{pin}".encode())
        return StoredPin(base64.b64encode(digest).decode(), self.current_key_id)

    def wrap(self, stored: StoredPin) -> StoredPin | None:
        """``stored`` moved under the current key without knowing the PIN; None when it already
        is there, or cannot be moved (a legacy hash needs the PIN)."""
        if stored.is_legacy or stored.chain[-1] == self.current_key_id:
            return None
        digest = self._digest(self.current_key_id, base64.b64decode(stored.value))
        return StoredPin(
            base64.b64encode(digest).decode(), KEY_ID_SEPARATOR.join((*stored.chain, self.current_key_id))
        )

    def verify(self, code_id: int, pin: str, stored: StoredPin) -> PinCheck:
        if stored.is_legacy:
            ok = self._verify_legacy(pin, stored.value)
        else:
            digest = f"{code_id}:{pin}".encode()
            for key_id in stored.chain:  # innermost first
                digest = self._digest(key_id, digest)
            ok = hmac.compare_digest(digest, base64.b64decode(stored.value))
        if not ok:
            return PinCheck(False)
        return PinCheck(True, None if stored.key_ids == self.current_key_id else self.hash(code_id, pin))

    def _verify_legacy(self, pin: str, argon2_hash: str) -> bool:
        if self._pepper is None:
            raise ConfigurationError(
                "a PIN is still an argon2 hash: set GIFTCARDS_PIN_PEPPER until `giftcards keys status` "
                "shows no argon2 PINs"
            )
        peppered = hmac.new(self._pepper, pin.encode(), hashlib.sha256).hexdigest()
        # Shares the process's argon2 slots with client secrets, queueing a little (it runs before
        # any lock is taken); none free in time is BusyError, and nothing is counted.
        with self._gate.admit(wait_seconds=LEGACY_WAIT_SECONDS):
            return bool(_argon2.verify(peppered, argon2_hash))
