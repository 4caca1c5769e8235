"""Authorization codes (the REST API's ``AuthCode``): an authorization answers one, and its capture
or cancel may name it instead of the transaction's id.

An authCode is 26 characters of the server's code alphabet (digits and capitals without the
look-alikes 0/O and 1/I, 5 bits each): 130 random bits from :mod:`secrets`. It is shown only in the
authorization's answer (and that answer's idempotent replay); the ledger row keeps only its SHA-256,
unique. A plain hash is enough: with at least 128 random bits the code cannot be found from its
hash by trying codes, so no secret key is needed. It is compared normalised, as codes are: case,
spaces and dashes do not matter.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlmodel import Session

from app.domain.codes import ALPHABET, generate_code, normalise
from app.domain.identifiers import parse_card_id
from app.entities import Transaction
from app.errors import BadUserInputError, ConflictError
from app.store import ledger as store

AUTH_CODE_LENGTH = 26  # 130 bits
_AUTH_CODE = re.compile(f"[{ALPHABET}]{{{AUTH_CODE_LENGTH}}}")
# A new code that is already another row's is drawn again; with 130 random bits even once is
# practically impossible, so a few draws that all collide mean something else is wrong.
_DRAWS = 3


def auth_code_hash(normalised: str) -> bytes:
    """What the ledger row keeps of an authCode: the SHA-256 of its normalised form."""
    return hashlib.sha256(normalised.encode()).digest()


def parse_auth_code(text: str, field: str = "auth_code") -> str:
    """The normalised authCode, or a refusal naming the field (never echoing what was given)."""
    normalised = normalise(text) if len(text) <= 4 * AUTH_CODE_LENGTH else ""
    if not _AUTH_CODE.fullmatch(normalised):
        raise BadUserInputError(
            f"{field}: an authorization code is {AUTH_CODE_LENGTH} letters and digits "
            "(spaces and dashes are ignored)",
            field=field,
        )
    return normalised


@dataclass(frozen=True)
class Authorization:
    """The AUTHORIZED transaction a capture or cancel addresses: by id or by authCode."""

    entry_id: int | None = None
    code_hash: bytes | None = None

    @property
    def field(self) -> str:
        """The argument that named it, which its refusals name."""
        return "id" if self.entry_id is not None else "auth_code"

    @property
    def request(self) -> dict[str, Any]:
        """What an idempotency key covers of it: the id as before authCodes existed (so stored keys
        still match their retries), else the code's hash."""
        if self.entry_id is not None:
            return {"id": self.entry_id}
        assert self.code_hash is not None
        return {"auth_code_hash": self.code_hash.hex()}

    def peek(self, session: Session) -> Row[Any] | None:
        """The ledger row it names, unlocked."""
        if self.entry_id is not None:
            return store.entry(session, self.entry_id)
        assert self.code_hash is not None
        return store.entry_by_auth_code(session, self.code_hash)


def addressed(entry_id: str | None, auth_code: str | None) -> Authorization:
    """The authorization named by exactly one of ``id`` and ``auth_code``, both checked."""
    if (entry_id is None) == (auth_code is None):
        raise BadUserInputError("id: give exactly one of id and auth_code", field="id")
    if entry_id is not None:
        return Authorization(entry_id=parse_card_id(entry_id))  # in a card id's words, which callers match
    assert auth_code is not None
    return Authorization(code_hash=auth_code_hash(parse_auth_code(auth_code)))


def target_of(entry_id: str | Authorization) -> Authorization:
    """What a capture or cancel addresses: an Authorization as given, or a transaction id's."""
    return entry_id if isinstance(entry_id, Authorization) else addressed(entry_id, None)


def located(location_id: str | None) -> dict[str, str]:
    """The location a capture or cancel records, and its idempotency key covers: nothing when not
    given, so that keys stored before locations existed still match their retries."""
    return {} if location_id is None else {"location_id": location_id}


def with_auth_code(answer: Transaction, auth_code: str | None) -> Transaction:
    """An authorization's answer with the code just drawn for it (the only place it is shown)."""
    return answer if auth_code is None else dataclasses.replace(answer, auth_code=auth_code)


def write_entry(session: Session, values: Mapping[str, Any], authorize: bool) -> tuple[Row[Any], str | None]:
    """Insert a ledger row; an authorization's with a new authCode, which is returned with the row."""
    if not authorize:
        return store.add_entry(session, values), None
    for _ in range(_DRAWS):
        code = generate_code(AUTH_CODE_LENGTH)
        row = store.add_authorization(session, {**values, "auth_code_hash": auth_code_hash(code)})
        if row is not None:
            return row, code
    raise ConflictError("no free authorization code was found; try again")
