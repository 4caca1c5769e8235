"""How hard a configured secret is to guess: zxcvbn's estimate, in bits, and what production requires.

zxcvbn models what people choose (words, names, dates, keyboard walks, repeats, sequences) and
counts anything it cannot explain as ten guesses a character: a random base64 key of 44 characters
comes out near 2^146, ``changeme-changeme-changeme-changeme`` near 2^27. Base64 of a phrase
looks random to it too, so such a secret is also judged as the phrase it encodes.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from app.keyrings import KEYRINGS, is_32_byte_key, keys_making_rows

if TYPE_CHECKING:
    from app.config import Settings

MIN_BITS = 128
# zxcvbn's matching time grows faster than the square of the length (about 0.1 s at 72 characters,
# 2.6 s at 400, 14 s at 800) and by default it refuses anything longer than 72. A longer secret is
# judged by its first 72 characters, which can only underestimate it: they alone must be enough.
MAX_JUDGED_CHARACTERS = 72

JWT_SECRET_COMMAND = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
KEY_COMMAND = 'python3 -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())"'
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def estimated_bits(secret: str, context: Iterable[str] = ()) -> float:
    """log2 of the guesses zxcvbn expects an attacker to need; ``context`` are words the attacker
    knows (the issuer, the audience), which count as cheap guesses when the secret contains them."""
    if not secret:
        return 0.0  # zxcvbn fails on an empty string
    from zxcvbn import zxcvbn  # its word lists take ~0.15 s to load: only production start-up pays

    guesses = zxcvbn(secret[:MAX_JUDGED_CHARACTERS], user_inputs=list(context))["guesses"]
    return math.log2(float(guesses))


def decoded_phrase(secret: str) -> str | None:
    """The text ``secret`` is the base64 of (either alphabet, padded or not), when those bytes are
    printable text; None when ``secret`` is not base64 or stands for bytes that are not text."""
    compact = secret.strip().translate(_URLSAFE_TO_STANDARD)
    try:
        text = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return text if text and all(char.isprintable() or char.isspace() for char in text) else None


def is_guessable(secret: str, context: Iterable[str] = ()) -> bool:
    """Whether ``secret``, or the phrase it is the base64 of, is estimated under MIN_BITS: a key is
    its decoded bytes, and whoever guesses a JWT secret offline from one token tries the base64 of
    each phrase, one more guess apiece, so neither is stronger than the phrase. Random bytes are not
    text, so random keys and secrets are judged as written."""
    texts = (decoded_phrase(secret), secret)
    return any(estimated_bits(text, context) < MIN_BITS for text in texts if text is not None)


def guessable_secrets(settings: Settings) -> list[str]:
    """The secret and keys that sign tokens and seal new codes and PINs, when one is estimated below
    MIN_BITS. Old keys of a ring are not judged (`giftcards keys rotate` must still read them to
    move their rows), nor is the PIN pepper (argon2 PINs stored under it cannot be moved)."""
    context = ("giftcards", settings.jwt_issuer, settings.jwt_audience)
    secrets = []  # (setting, secret, the command that generates a better one)
    if settings.uses_hmac_tokens and settings.jwt_secret is not None:
        secrets.append(("GIFTCARDS_JWT_SECRET", settings.jwt_secret.get_secret_value(), JWT_SECRET_COMMAND))
    for name in [name for name in KEYRINGS if getattr(settings, name) is not None]:
        text = getattr(settings, name).get_secret_value()
        keys = [("", text.strip())] if name == "code_lookup_key" else keys_making_rows(text)
        setting = f"GIFTCARDS_{name.upper()}"
        # A malformed key is refused, more precisely, where its keyring is read.
        secrets += [
            (setting + (f" (key {key_id})" if key_id else ""), key, KEY_COMMAND)
            for key_id, key in keys
            if is_32_byte_key(key)
        ]
    return [
        f"{setting} is too guessable (under {MIN_BITS} bits of estimated entropy); "
        f"generate one with `{command}`"
        for setting, secret, command in secrets
        if is_guessable(secret, context)
    ]
