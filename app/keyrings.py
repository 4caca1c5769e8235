"""The keyring format, ``[+]id:key[,…]``: its entries, which of them make new rows, the keys in it,
and a key decoded to the 32 bytes the ciphers take (see README, rotating keys)."""

from __future__ import annotations

import base64
import binascii

from app.errors import ConfigurationError

# The settings that hold keyrings (code_lookup_key: a lookup keyring of one key).
KEYRINGS = ("code_lookup_key", "code_lookup_keys", "code_encryption_keys", "pin_keys")

STAGED = "+"  # before a key id: a key every server knows, not yet current (see README, rotating keys)
# GIFTCARDS_CODE_LOOKUP_KEY (a single key, no id) is the lookup keyring "lk1:KEY".
LEGACY_LOOKUP_KEY_ID = "lk1"


def keyring_entries(keyring: str) -> list[tuple[str, str, bool]]:
    """``[+]id:key[,…]`` → (id, key, staged) per non-empty entry, as written; an entry without a
    colon has an empty key. Checking ids and keys is the reader's job (``parse_keyring``)."""
    entries = []
    for entry in (entry.strip() for entry in keyring.split(",")):
        if entry:
            key_id, _, key = entry.removeprefix(STAGED).partition(":")
            entries.append((key_id.strip(), key.strip(), entry.startswith(STAGED)))
    return entries


def keys_making_rows(keyring: str) -> list[tuple[str, str]]:
    """(id, key) of a keyring's current key (its first unstaged entry) and of its staged ones."""
    chosen, current_seen = [], False
    for key_id, key, staged in keyring_entries(keyring):
        if staged or not current_seen:
            chosen.append((key_id, key))
        current_seen = current_seen or not staged
    return chosen


def key_material(value: str) -> set[str]:
    """The keys in a secret or keyring (``id:key,id:key`` → the keys)."""
    return {entry.rpartition(":")[2].strip() for entry in value.split(",") if entry.strip()}


def is_32_byte_key(text: str) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except binascii.Error:
        return False


def decode_key(name: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ConfigurationError(f"{name} is not valid base64") from None
    if len(key) != 32:
        raise ConfigurationError(f"{name} must decode to 32 bytes, got {len(key)}")
    return key
