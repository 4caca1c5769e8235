"""How hard a configured secret is to guess: zxcvbn's estimate, in bits, and what production requires.

zxcvbn models what people choose (words, names, dates, keyboard walks, repeats, sequences) and
counts anything it cannot explain as ten guesses a character: a random base64 key of 44 characters
comes out near 2^146, ``changeme-changeme-changeme-changeme`` near 2^27.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MIN_BITS = 128
# zxcvbn's matching time grows faster than the square of the length (about 0.1 s at 72 characters,
# 2.6 s at 400, 14 s at 800) and by default it refuses anything longer than 72. A longer secret is
# judged by its first 72 characters, which can only underestimate it: they alone must be enough.
MAX_JUDGED_CHARACTERS = 72

JWT_SECRET_COMMAND = "python3 -c \"import secrets; print(secrets.token_urlsafe(48))\""
KEY_COMMAND = ("python3 -c \"import base64, secrets; "
               "print(base64.b64encode(secrets.token_bytes(32)).decode())\"")


def estimated_bits(secret: str, context: Iterable[str] = ()) -> float:
    """log2 of the guesses zxcvbn expects an attacker to need; ``context`` are words the attacker
    knows (the issuer, the audience), which count as cheap guesses when the secret contains them."""
    if not secret:
        return 0.0  # zxcvbn fails on an empty string
    from zxcvbn import zxcvbn  # its word lists take ~0.15 s to load: only production start-up pays

    guesses = zxcvbn(secret[:MAX_JUDGED_CHARACTERS], user_inputs=list(context))["guesses"]
    return math.log2(float(guesses))


def is_guessable(secret: str, context: Iterable[str] = ()) -> bool:
    return estimated_bits(secret, context) < MIN_BITS
