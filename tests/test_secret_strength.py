"""zxcvbn's estimate of a secret: generated keys clear 128 bits, human ones do not (base64-encoded
or not), long ones are quick."""

from __future__ import annotations

import base64
import random
import secrets
import time

import pytest

from app.secret_strength import MIN_BITS, decoded_phrase, estimated_bits, is_guessable


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(48),  # the JWT secret command
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),  # the key command
        lambda: secrets.token_hex(32),
    ],
    ids=["token_urlsafe(48)", "base64 of 32 bytes", "token_hex(32)"],
)
def test_generated_secrets_clear_the_bar(make):
    for _ in range(5):
        assert estimated_bits(make()) >= MIN_BITS


@pytest.mark.parametrize(
    "secret",
    [
        "changeme-changeme-changeme-changeme",
        "correct horse battery staple correct horse",
        base64.b64encode(bytes(32)).decode(),
        "0123456789abcdef" * 3,
        "Summer2026!Summer2026!Summer2026!",
        secrets.token_urlsafe(24),  # random, but 32 characters are not 128 bits of guessing
    ],
    ids=["changeme", "passphrase", "base64 of zeros", "hex pattern", "season", "token_urlsafe(24)"],
)
def test_chosen_or_short_secrets_do_not(secret):
    assert is_guessable(secret)


def test_words_the_attacker_knows_count_as_guesses():
    secret = "giftcards.example.com-signing-key-production-2026"
    assert estimated_bits(secret, ["giftcards.example.com"]) < estimated_bits(secret)


def test_only_the_first_72_characters_are_judged_so_long_secrets_are_quick():
    started = time.perf_counter()
    # a long random secret clears the bar on its first 72 characters; one that starts guessable
    # is refused whatever follows
    assert not is_guessable(secrets.token_urlsafe(30_000))
    assert is_guessable("changeme-" * 8 + secrets.token_urlsafe(30_000))
    # judged whole, 800 characters alone would take about 14 s
    assert time.perf_counter() - started < 3


def test_an_empty_secret_has_no_entropy():
    assert estimated_bits("") == 0


# A phrase someone base64-encoded: as base64 text each looks random to zxcvbn (about 146 bits).
PHRASES = ["giftcards-production-secret-2026", "correct horse battery staple 123"]


def _encodings(phrase: str) -> list[str]:
    data = phrase.encode()
    return [base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode().rstrip("=")]


@pytest.mark.parametrize("phrase", PHRASES)
def test_base64_of_a_phrase_is_as_guessable_as_the_phrase(phrase):
    for encoded in _encodings(phrase):
        # given text that clears the bar as written
        assert estimated_bits(encoded) >= MIN_BITS
        # then it is judged by the phrase it stands for
        assert decoded_phrase(encoded) == phrase
        assert is_guessable(encoded)


def test_random_keys_and_secrets_are_judged_as_before():
    generator = random.Random(2026)
    keys = [base64.b64encode(generator.randbytes(32)).decode() for _ in range(200)]
    urlsafe = [base64.urlsafe_b64encode(generator.randbytes(48)).decode() for _ in range(200)]
    hex_secrets = [generator.randbytes(32).hex() for _ in range(200)]
    # random bytes are not text, so nothing but the base64 itself is judged
    assert [text for text in keys + urlsafe + hex_secrets if decoded_phrase(text) is not None] == []
    # and the keys the key command makes still clear the bar
    assert [key for key in keys if is_guessable(key)] == []


@pytest.mark.parametrize("text", ["not base64 at all!", "YWJjZ", "AAAA", "gICA", "", "aGVsbG8KAA=="])
def test_only_base64_of_printable_text_is_a_phrase(text):
    # invalid base64, zero bytes, bytes that are not UTF-8, text with a control character
    assert decoded_phrase(text) is None
