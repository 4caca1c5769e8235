"""Gift card codes: normalise, validate, generate, index (HMAC), encrypt (AES-GCM), mask.

A code is compared normalised (upper case, no spaces or dashes) and kept only as a keyed lookup hash
and AEAD ciphertext bound to its type, under keyrings whose ids, stored with each row, let keys rotate
(:mod:`app.domain.keys`); a lookup tries the hash under every key of the ring.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.config import Settings
from app.enums import CodeType
from app.errors import BadUserInputError, ConfigurationError
from app.keyrings import LEGACY_LOOKUP_KEY_ID, STAGED, decode_key, keyring_entries

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
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


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


def parse_keyring(name: str, text: str) -> dict[str, bytes]:
    """``[+]id:base64key[,…]`` as ``{id: key}``: the current key (the first not staged, ``+``) first,
    staged keys last. Every key opens what it made, but only the current one makes new rows, so a new
    key can be known to every server before any uses it. Messages name a key's id, never the key."""
    ring: dict[str, bytes] = {}
    staged = staged_key_ids(text)
    for entry in text.split(","):
        key_id, sep, value = entry.strip().removeprefix(STAGED).partition(":")
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise ConfigurationError(
                f"{name} must be 'id:base64key[,id:base64key…]' with ids of 1 to 32 letters, "
                "digits, '_', '.' or '-' (a staged key: '+id:base64key')"
            )
        if key_id in ring:
            raise ConfigurationError(f"{name}: key id {key_id!r} appears more than once")
        key = decode_key(f"{name} ({key_id})", value.strip())
        if key in ring.values():
            raise ConfigurationError(f"{name}: key {key_id!r} is the same key as another id")
        ring[key_id] = key
    if staged >= ring.keys():
        raise ConfigurationError(f"{name}: every key is staged ('+'); one must be current")
    return {key_id: key for key_id, key in sorted(ring.items(), key=lambda item: item[0] in staged)}


def staged_key_ids(text: str) -> frozenset[str]:
    """The ids marked staged (``+id:key``) in a keyring setting."""
    return frozenset(key_id for key_id, _, staged in keyring_entries(text) if staged)


def lookup_keyring(settings: Settings) -> dict[str, bytes]:
    keys, single = settings.code_lookup_keys, settings.code_lookup_key
    if keys is not None and single is not None:
        raise ConfigurationError(
            "set GIFTCARDS_CODE_LOOKUP_KEYS or GIFTCARDS_CODE_LOOKUP_KEY, not both "
            f"(GIFTCARDS_CODE_LOOKUP_KEY=KEY is GIFTCARDS_CODE_LOOKUP_KEYS={LEGACY_LOOKUP_KEY_ID}:KEY)"
        )
    if keys is not None:
        return parse_keyring("GIFTCARDS_CODE_LOOKUP_KEYS", keys.get_secret_value())
    if single is not None:
        return {LEGACY_LOOKUP_KEY_ID: decode_key("GIFTCARDS_CODE_LOOKUP_KEY", single.get_secret_value())}
    raise ConfigurationError("code keys are not configured")


@dataclass(frozen=True)
class SealedCode:
    lookup_hash: bytes  # under the current lookup key: the one stored
    ciphertext: bytes
    key_id: str
    last4: str
    lookup_key_id: str
    lookup_hashes: tuple[bytes, ...]  # under every lookup key, current first: what a row may hold

    @property
    def columns(self) -> dict[str, Any]:
        """What a code's row stores of it (every field but ``lookup_hashes``)."""
        return {name: value for name, value in asdict(self).items() if name != "lookup_hashes"}


class CodeVault:
    """Holds the lookup and encryption keyrings (first key of each current); seals and opens codes."""

    def __init__(
        self,
        lookup_keys: dict[str, bytes],
        keyring: dict[str, bytes],
        staged: frozenset[str] = frozenset(),
        staged_lookup: frozenset[str] = frozenset(),
    ) -> None:
        if not lookup_keys or not keyring:
            raise ConfigurationError("code keys are not configured")
        self.staged_key_ids, self.staged_lookup_key_ids = staged, staged_lookup  # known, not yet current
        self._lookup_keys = tuple(lookup_keys.values())
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.items()}
        self.lookup_key_ids = tuple(lookup_keys)
        self.key_ids = tuple(keyring)
        self.lookup_key_id = self.lookup_key_ids[0]
        self.active_key_id = self.key_ids[0]

    @classmethod
    def from_settings(cls, settings: Settings) -> CodeVault:
        if settings.code_encryption_keys is None:
            raise ConfigurationError("code keys are not configured")
        text = settings.code_encryption_keys.get_secret_value()
        keyring = parse_keyring("GIFTCARDS_CODE_ENCRYPTION_KEYS", text)
        lookup = settings.code_lookup_keys
        staged_lookup = frozenset() if lookup is None else staged_key_ids(lookup.get_secret_value())
        return cls(lookup_keyring(settings), keyring, staged_key_ids(text), staged_lookup)

    def lookup_hashes(self, normalised: str) -> tuple[bytes, ...]:
        """The hash under every lookup key, current first: a row holds one of them."""
        message = normalised.encode()
        return tuple(hmac.digest(key, message, "sha256") for key in self._lookup_keys)

    def seal(self, normalised: str, code_type: CodeType) -> SealedCode:
        hashes = self.lookup_hashes(normalised)
        return SealedCode(
            lookup_hash=hashes[0],
            ciphertext=self._encrypt(normalised.encode(), code_type.value.encode()),
            key_id=self.active_key_id,
            last4=normalised[-4:],
            lookup_key_id=self.lookup_key_id,
            lookup_hashes=hashes,
        )

    def reseal(self, ciphertext: bytes, key_id: str, code_type: CodeType) -> SealedCode:
        """The stored code sealed again under the current keys (the plaintext stays in here)."""
        return self.seal(self.open(ciphertext, key_id, code_type.value), code_type)

    def keyed_digests(self, purpose: bytes, data: bytes) -> tuple[bytes, ...]:
        """HMAC of other data that can hold a code or PIN (so a stored digest cannot be brute-forced),
        under every lookup key, current first (to match a stored digest)."""
        message = purpose + b"\0" + data
        return tuple(hmac.digest(key, message, "sha256") for key in self._lookup_keys)

    def seal_blob(self, data: bytes, context: bytes) -> tuple[str, bytes]:
        """Encrypt other secrets (e.g. a stored response) with the active key, bound to ``context``."""
        return self.active_key_id, self._encrypt(data, context)

    def open_blob(self, key_id: str, blob: bytes, context: bytes) -> bytes:
        return self._decrypt(key_id, blob, context, "a stored secret")

    def open(self, ciphertext: bytes, key_id: str, code_type: str) -> str:
        return self._decrypt(key_id, ciphertext, code_type.encode(), "a code").decode()

    def _encrypt(self, data: bytes, bound_to: bytes) -> bytes:
        """``data`` under the active key with a fresh nonce (nonce + ciphertext + tag)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._ciphers[self.active_key_id].encrypt(nonce, data, bound_to)

    def _decrypt(self, key_id: str, sealed: bytes, bound_to: bytes, what: str) -> bytes:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ConfigurationError(f"code key {key_id!r} is not configured")
        try:
            return cipher.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], bound_to)
        except InvalidTag:
            raise ConfigurationError(f"{what} does not decrypt with key {key_id!r}") from None
