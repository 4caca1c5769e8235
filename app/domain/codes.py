"""Gift card codes: normalise, validate, generate, index (HMAC), encrypt (AES-GCM), mask.

A code is compared in its normalised form (upper case, no spaces or dashes). At rest it exists
only as a keyed hash for lookup and as AEAD ciphertext bound to its code type; the key id stored
beside the ciphertext lets keys rotate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.config import Settings, decode_key
from app.enums import CodeType
from app.errors import BadUserInputError, ConfigurationError

# Digits and capitals without the look-alikes 0/O and 1/I: 32 symbols, 5 bits each.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PERSONAL_CODE_LENGTH = 20  # 100 bits of entropy
MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 64
MASK_CHARACTER = "*"
# Codes shorter than this are masked whole: their last four characters would give too much away.
SHORTEST_PARTLY_MASKED = 12

_NONCE_BYTES = 12
_TAG_BYTES = 16
_STRIP = str.maketrans("", "", " -")
_VALID = re.compile(rf"[A-Z0-9]{{{MIN_CODE_LENGTH},{MAX_CODE_LENGTH}}}")
_PIN = re.compile(r"[0-9]{4,12}")


def normalise(code: str) -> str:
    return code.translate(_STRIP).upper()


def validate_code(code: str, field: str) -> str:
    """Return the normalised code, or refuse it naming the field (never echoing the code)."""
    if len(code) > 4 * MAX_CODE_LENGTH:
        raise BadUserInputError(f"{field}: a code has at most {MAX_CODE_LENGTH} characters", field=field)
    normalised = normalise(code)
    if not _VALID.fullmatch(normalised):
        raise BadUserInputError(
            f"{field}: a code is {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} letters and digits "
            "(spaces and dashes are ignored)",
            field=field,
        )
    return normalised


def validate_pin(pin: str, field: str) -> str:
    if not _PIN.fullmatch(pin):
        raise BadUserInputError(f"{field}: a PIN is 4 to 12 digits", field=field)
    return pin


def generate_code(length: int = PERSONAL_CODE_LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def mask(last4: str, length: int) -> str:
    if length < SHORTEST_PARTLY_MASKED:
        return MASK_CHARACTER * length
    return MASK_CHARACTER * (length - len(last4)) + last4


def plaintext_length(ciphertext: bytes) -> int:
    return len(ciphertext) - _NONCE_BYTES - _TAG_BYTES


@dataclass(frozen=True)
class SealedCode:
    lookup_hash: bytes
    ciphertext: bytes
    key_id: str
    last4: str


class CodeVault:
    """Holds the lookup key and the encryption keyring; seals and opens codes."""

    def __init__(self, lookup_key: bytes, keyring: dict[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keyring:
            raise ConfigurationError(f"active code key {active_key_id!r} is not in the keyring")
        self._lookup_key = lookup_key
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.items()}
        self.active_key_id = active_key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> CodeVault:
        if settings.code_lookup_key is None or settings.code_encryption_keys is None:
            raise ConfigurationError("code keys are not configured")
        lookup = decode_key("GIFTCARDS_CODE_LOOKUP_KEY", settings.code_lookup_key.get_secret_value())
        keyring: dict[str, bytes] = {}
        entries = settings.code_encryption_keys.get_secret_value().split(",")
        for entry in entries:
            key_id, sep, value = entry.strip().partition(":")
            if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", key_id):
                raise ConfigurationError(
                    "GIFTCARDS_CODE_ENCRYPTION_KEYS must be 'id:base64key[,id:base64key…]'"
                )
            keyring[key_id] = decode_key(f"GIFTCARDS_CODE_ENCRYPTION_KEYS ({key_id})", value)
        first = entries[0].strip().partition(":")[0]
        return cls(lookup, keyring, first)

    def lookup_hash(self, normalised: str) -> bytes:
        return hmac.new(self._lookup_key, normalised.encode(), hashlib.sha256).digest()

    def seal(self, normalised: str, code_type: CodeType) -> SealedCode:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        cipher = self._ciphers[self.active_key_id]
        body = cipher.encrypt(nonce, normalised.encode(), code_type.value.encode())
        return SealedCode(
            lookup_hash=self.lookup_hash(normalised),
            ciphertext=nonce + body,
            key_id=self.active_key_id,
            last4=normalised[-4:],
        )

    def keyed_digest(self, purpose: bytes, data: bytes) -> bytes:
        """HMAC of other data that can hold a code or PIN (so a stored digest cannot be brute-forced)."""
        return hmac.new(self._lookup_key, purpose + b"\0" + data, hashlib.sha256).digest()

    def seal_blob(self, data: bytes, context: bytes) -> tuple[str, bytes]:
        """Encrypt other secrets (e.g. a stored response) with the active key, bound to ``context``."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return self.active_key_id, nonce + self._ciphers[self.active_key_id].encrypt(nonce, data, context)

    def open_blob(self, key_id: str, blob: bytes, context: bytes) -> bytes:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ConfigurationError(f"code key {key_id!r} is not configured")
        try:
            return cipher.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context)
        except InvalidTag:
            raise ConfigurationError(f"a stored secret does not decrypt with key {key_id!r}") from None

    def open(self, ciphertext: bytes, key_id: str, code_type: str) -> str:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ConfigurationError(f"code key {key_id!r} is not configured")
        try:
            plain = cipher.decrypt(ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:], code_type.encode())
        except InvalidTag:
            raise ConfigurationError(f"a code does not decrypt with key {key_id!r}") from None
        return plain.decode()
