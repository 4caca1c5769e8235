"""A plain debit in one statement on PostgreSQL: the call of ``giftcard_plain_debit`` (migration
0015), in autocommit on a pooled connection, so that the debit is one round trip and its own
transaction, and the card's lock is held only inside the server, never across a round trip.

The function finds the live code (or takes the one the caller read), locks its card and then the
code (the order every writer takes), checks the code's PIN (that it has none, or that the PIN
given, as the caller hashed it, is the stored one, with no wrong one counted and the code not
locked), reads the card's open debit holds after the lock, and writes the balance, the ledger row
and the audit row, all or nothing. It returns no row, having written nothing, for whatever it does
not do itself (a wrong PIN, a program, two codes, not enough available, an unusable code or card…).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, column, text
from sqlalchemy.sql.expression import TextClause

from app.currencies import CURRENCY_EXPONENTS
from app.db import raise_if_lock_waited
from app.models import LedgerEntry
from app.store.audit import AuditRecord
from app.store.prepared import Prepared, one_write
from app.store.scope import Stores

_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]
# The currencies without two decimals, in the order the call names them, with their decimals. The
# call takes the amount once per number of decimals: these two arrays are written into the statement
# (the currencies as constants, the amounts as each one's bound value), never built by the driver.
_OTHER_CURRENCIES = tuple((code, places) for code, places in CURRENCY_EXPONENTS.items() if places != 2)
# The call's arguments in the function's order, with their types ("currencies" and "amounts": above).
_ARGUMENTS = (
    ("hashes", "bytea[]"),
    ("code_type", "text"),
    ("stores", "text[]"),
    ("code_id", "bigint"),
    ("card_id", "bigint"),
    ("pin_hash", "text"),
    ("now", "timestamptz"),
    ("minor_2", "bigint"),
    ("currencies", "text[]"),
    ("amounts", "bigint[]"),
    ("entry_id", "bigint"),
    ("trans_type", "text"),
    ("source_id", "text"),
    ("ref_no", "text"),
    ("note", "text"),
    ("location_id", "text"),
    ("created_by", "text"),
    ("audit_id", "bigint"),
    ("occurred_at", "timestamptz"),
    ("action", "text"),
    ("outcome", "text"),
    ("subject", "text"),
    ("request_id", "text"),
    ("client_address", "text"),
)


@dataclass(frozen=True, slots=True)
class CheckedCode:
    """A code read before the call, and the PIN given as it would be stored on it (a keyed hash):
    the call debits only if that is the stored PIN, no wrong one is counted, the code not locked."""

    code_id: int
    card_id: int
    pin_hash: str


@dataclass(frozen=True, slots=True)
class PlainDebit:
    """What the call needs: the code's address (or the code read already, with the stored PIN
    checked), the amount for each currency, the ledger row's own values and the audit row's (its
    card and store are the card's, filled in by the call)."""

    hashes: Sequence[bytes]
    code_type: str
    stores: Stores
    checked: CheckedCode | None  # a code with a PIN, read, and the PIN given; None: look it up
    now: datetime
    minor: dict[int, int | None]  # the amount in minor units by each currency's decimals (None: too many)
    entry_id: int
    entry: dict[str, Any]  # trans_type, source_id, ref_no, note, location_id, created_by
    audit_id: int
    audit: AuditRecord


def _argument(name: str, kind: str) -> str:
    if name == "currencies":
        assert all(code.isalpha() and code.isupper() for code, _ in _OTHER_CURRENCIES)  # constants
        return f"CAST(ARRAY[{', '.join(repr(code) for code, _ in _OTHER_CURRENCIES)}] AS text[])"
    if name == "amounts":
        return f"ARRAY[{', '.join(f'CAST(:minor_{places} AS bigint)' for _, places in _OTHER_CURRENCIES)}]"
    return f"CAST(:{name} AS {kind})"


def _call() -> TextClause:
    arguments = ", ".join(_argument(name, kind) for name, kind in _ARGUMENTS)
    entry = ", ".join(f'(d.entry)."{item.name}" AS "{item.name}"' for item in _ledger.c)
    # Names from the model and the lists above only; every value is a bound parameter.
    return text(f"SELECT d.currency, d.held, {entry} FROM giftcard_plain_debit({arguments}) AS d")  # noqa: S608


class PlainDebitStore:
    """Runs plain debits on a PostgreSQL engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Untyped: psycopg gives these columns as the full path reads them (times with their zone)
        named = _call().columns(*(column(name) for name in ("currency", "held", *_ledger.c.keys())))
        self._call = Prepared(named, engine)

    def debit(self, call: PlainDebit) -> dict[str, Any] | None:
        """The ledger row written, with its card's ``currency`` and what its open debit holds
        ``held``; None when the debit is not plain, and nothing was written."""
        record = call.audit
        params: dict[str, Any] = {
            "hashes": list(call.hashes),
            "code_type": call.code_type,
            "stores": None if call.stores is None else list(call.stores),
            "code_id": None if call.checked is None else call.checked.code_id,
            "card_id": None if call.checked is None else call.checked.card_id,
            "pin_hash": None if call.checked is None else call.checked.pin_hash,
            "now": call.now,
            **{f"minor_{places}": minor for places, minor in call.minor.items()},
            "entry_id": call.entry_id,
            **call.entry,
            "audit_id": call.audit_id,
            "occurred_at": record.occurred_at,
            "action": record.action,
            "outcome": record.outcome,
            "subject": record.subject,
            "request_id": record.request_id,
            "client_address": record.client_address,
        }
        try:
            with one_write(self._engine) as connection:
                rows = self._call.run(connection, **params)
        except Exception as error:  # the card's lock waited for too long: as on the full path
            raise_if_lock_waited(error)
            raise
        return self._call.named(rows[0]) if rows else None
