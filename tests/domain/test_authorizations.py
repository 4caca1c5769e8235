"""Authorization codes: their form, how they are read back, what a capture or cancel addresses, and
a new code drawn again when its hash is already another row's."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from app.domain import authorizations
from app.domain.authorizations import (
    AUTH_CODE_LENGTH,
    Authorization,
    addressed,
    auth_code_hash,
    parse_auth_code,
    target_of,
    write_entry,
)
from app.domain.codes import ALPHABET
from app.enums import CodeType
from app.errors import BadUserInputError, ConflictError
from tests.conftest import transaction

CODE = "23456789ABCDEFGHJKLMNPQRST"  # 26 symbols of the alphabet


def test_a_code_is_read_whatever_its_case_spaces_and_dashes():
    assert parse_auth_code(CODE) == CODE
    assert parse_auth_code("2345-6789 abcd-efgh jklm-npqr st") == CODE


@pytest.mark.parametrize(
    "given",
    [
        CODE[:-1],
        CODE + "U",
        CODE[:-1] + "0",
        CODE[:-1] + "O",
        CODE[:-1] + "1",
        CODE[:-1] + "I",
        "",
        "-" * 200,
    ],
    ids=["short", "long", "zero", "letter O", "one", "letter I", "empty", "dashes only"],
)
def test_a_malformed_code_is_refused_naming_the_field_without_echoing_it(given):
    with pytest.raises(BadUserInputError) as refused:
        parse_auth_code(given)
    assert refused.value.field == "auth_code"
    assert str(refused.value) == (
        "auth_code: an authorization code is 26 letters and digits (spaces and dashes are ignored)"
    )


def test_a_very_long_input_is_refused_before_it_is_normalised():
    with pytest.raises(BadUserInputError):
        parse_auth_code(" " * 10_000 + CODE)


def test_spaces_and_dashes_are_read_up_to_four_characters_a_symbol():
    # 26 symbols padded to exactly 104 characters are read; one more character is refused
    padded = "-" * (4 * AUTH_CODE_LENGTH - len(CODE)) + CODE
    assert len(padded) == 104 and parse_auth_code(padded) == CODE
    with pytest.raises(BadUserInputError):
        parse_auth_code(" " + padded)


def test_the_row_keeps_the_plain_sha256_of_the_normalised_code():
    assert auth_code_hash(CODE) == hashlib.sha256(CODE.encode()).digest()


@pytest.mark.parametrize(("entry_id", "auth_code"), [(None, None), ("12", CODE)], ids=["neither", "both"])
def test_a_capture_names_exactly_one_of_id_and_auth_code(entry_id, auth_code):
    with pytest.raises(BadUserInputError) as refused:
        addressed(entry_id, auth_code)
    assert (refused.value.field, str(refused.value)) == ("id", "id: give exactly one of id and auth_code")


def test_by_id_the_key_covers_the_id_as_before():
    target = addressed("12", None)
    assert (target, target.field, target.request) == (Authorization(entry_id=12), "id", {"id": 12})
    assert target_of("12") == target and target_of(target) is target
    with pytest.raises(BadUserInputError) as refused:
        addressed("twelve", None)
    assert refused.value.field == "id"


def test_by_code_the_key_covers_the_codes_hash_not_the_code():
    target = addressed(None, "2345-6789-" + CODE[8:].lower())
    digest = hashlib.sha256(CODE.encode()).digest()
    assert (target, target.field) == (Authorization(code_hash=digest), "auth_code")
    assert target.request == {"auth_code_hash": digest.hex()}


# --- drawing a code -----------------------------------------------------------------------------


def _values(card_id: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "giftcard_id": card_id,
        "trans_type": "USE",
        "status": "AUTHORIZED",
        "amount": -100,
        "balance_after": 0,
        "created_at": now,
    }


def _hashes(services) -> list[bytes | None]:
    with services.engine.connect() as connection:
        rows = connection.execute(text("SELECT auth_code_hash FROM giftcard_transactions ORDER BY id"))
        return [None if value is None else bytes(value) for (value,) in rows]


def test_an_authorization_gets_a_fresh_code_and_other_entries_none(services, seed):
    card_id = seed({CodeType.PHYSICAL: "DRAWNCODE001"})
    with transaction(services) as session:
        _, first = write_entry(session, _values(card_id), True)
        _, second = write_entry(session, _values(card_id), True)
        _, none = write_entry(session, {**_values(card_id), "status": "COMPLETED"}, False)

    assert first is not None and second is not None and first != second and none is None
    assert all(len(code) == AUTH_CODE_LENGTH and set(code) <= set(ALPHABET) for code in (first, second))
    assert _hashes(services) == [auth_code_hash(first), auth_code_hash(second), None]


def test_a_code_already_taken_is_drawn_again(services, seed, monkeypatch):
    card_id = seed({CodeType.PHYSICAL: "DRAWNCODE002"})
    with transaction(services) as session:
        write_entry(session, {**_values(card_id), "auth_code_hash": auth_code_hash(CODE)}, False)
    draws = iter([CODE, "33456789ABCDEFGHJKLMNPQRST"])
    monkeypatch.setattr(authorizations, "generate_code", lambda length: next(draws))

    with transaction(services) as session:
        _, code = write_entry(session, _values(card_id), True)

    assert code == "33456789ABCDEFGHJKLMNPQRST"
    assert _hashes(services) == [auth_code_hash(CODE), auth_code_hash(code)]


def test_codes_that_keep_colliding_are_a_clean_conflict_and_write_nothing(services, seed, monkeypatch):
    card_id = seed({CodeType.PHYSICAL: "DRAWNCODE003"})
    with transaction(services) as session:
        write_entry(session, {**_values(card_id), "auth_code_hash": auth_code_hash(CODE)}, False)
    monkeypatch.setattr(authorizations, "generate_code", lambda length: CODE)

    refusal = pytest.raises(ConflictError, match=r"^no free authorization code was found; try again$")
    with refusal, transaction(services) as session:
        write_entry(session, _values(card_id), True)

    assert _hashes(services) == [auth_code_hash(CODE)]
