"""Key queries: how many rows each key id covers, and code rows to move to the current keys.
:class:`KeyRows` holds the engine; it moves rows a batch at a time, one transaction per batch.

Sealed code rows live in two tables (cards' codes and reserved stock); both carry the id of the
AEAD key (``key_id``) and of the HMAC lookup key (``lookup_key_id``). Stored idempotent responses
carry an AEAD key id and the lookup key id that digested the request; they expire, so they are
counted but never moved. Keyed PINs carry
the chain of PIN key ids that made them; rotation wraps them under the current key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.db import READ_ONLY
from app.errors import ConflictError
from app.models import GiftCardCode, IdempotencyKey, ReservedCode

CODE_TABLES: dict[str, Table] = {
    "giftcard_codes": GiftCardCode.__table__,  # type: ignore[attr-defined]
    "reserved_codes": ReservedCode.__table__,  # type: ignore[attr-defined]
}
_responses: Table = IdempotencyKey.__table__  # type: ignore[attr-defined]
RESPONSES = "idempotency_keys"
UNKNOWN_KEY = ""  # requests digested before their key id was stored: any lookup key may have


@dataclass(frozen=True, slots=True)
class KeyCount:
    table: str
    column: str  # key_id (encryption) or lookup_key_id
    key_id: str
    rows: int


@dataclass(frozen=True, slots=True)
class SealedRow:
    id: int
    code_type: str  # reserved codes are PHYSICAL
    ciphertext: bytes
    key_id: str


@dataclass(frozen=True, slots=True)
class Resealed:
    id: int
    lookup_hash: bytes
    lookup_key_id: str
    ciphertext: bytes
    key_id: str


def _stale(table: Table, key_id: str, lookup_key_id: str) -> Any:
    return or_(table.c.key_id != key_id, table.c.lookup_key_id != lookup_key_id)


def _stale_rows(
    connection: Connection, table_name: str, key_id: str, lookup_key_id: str, after_id: int, limit: int
) -> list[SealedRow]:
    """The next rows after ``after_id`` not sealed under these keys, locked until the transaction ends."""
    table = CODE_TABLES[table_name]
    code_type = table.c.code_type if "code_type" in table.c else literal("PHYSICAL")
    statement = (
        select(table.c.id, table.c.ciphertext, table.c.key_id, code_type)
        .where(table.c.id > after_id, _stale(table, key_id, lookup_key_id))
        .order_by(table.c.id)
        .limit(limit)
        .with_for_update()
    )
    return [SealedRow(row[0], row[3], bytes(row[1]), row[2]) for row in connection.execute(statement)]


def _store_resealed(connection: Connection, table_name: str, rows: Sequence[Resealed]) -> None:
    """Write the new hash, ciphertext and key ids of each row (one executemany)."""
    table = CODE_TABLES[table_name]
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            lookup_hash=bindparam("new_lookup_hash"),
            lookup_key_id=bindparam("new_lookup_key_id"),
            ciphertext=bindparam("new_ciphertext"),
            key_id=bindparam("new_key_id"),
        )
    )
    connection.execute(
        statement,
        [
            {
                "row_id": row.id,
                "new_lookup_hash": row.lookup_hash,
                "new_lookup_key_id": row.lookup_key_id,
                "new_ciphertext": row.ciphertext,
                "new_key_id": row.key_id,
            }
            for row in rows
        ],
    )


# --- PINs: keyed values and the key ids that made them ------------------------------------------

PIN_TABLE = "giftcard_codes"
_pins = CODE_TABLES[PIN_TABLE]


@dataclass(frozen=True, slots=True)
class PinRow:
    id: int
    value: str
    key_ids: str


def _pin_not_under(current: str) -> Any:
    """A live keyed PIN whose outermost key is not ``current`` (chains are "a,b,c", innermost
    first). Compared as text, case and all (SQLite's LIKE ignores case)."""
    suffix = "," + current
    chain = _pins.c.pin_key_ids
    return and_(
        chain.is_not(None),
        _pins.c.revoked_at.is_(None),
        chain != current,
        func.substr(chain, func.length(chain) - len(suffix) + 1) != suffix,
    )


def _stale_pin_rows(connection: Connection, current: str, after_id: int, limit: int) -> list[PinRow]:
    """The next keyed PINs after ``after_id`` not under ``current``, locked until the transaction ends."""
    statement = (
        select(_pins.c.id, _pins.c.pin_hash, _pins.c.pin_key_ids)
        .where(_pins.c.id > after_id, _pin_not_under(current))
        .order_by(_pins.c.id)
        .limit(limit)
        .with_for_update()
    )
    return [PinRow(row[0], row[1], row[2]) for row in connection.execute(statement)]


def _store_pins(connection: Connection, rows: Sequence[PinRow]) -> None:
    statement = (
        update(_pins)
        .where(_pins.c.id == bindparam("row_id"))
        .values(pin_hash=bindparam("new_value"), pin_key_ids=bindparam("new_key_ids"))
    )
    connection.execute(
        statement, [{"row_id": row.id, "new_value": row.value, "new_key_ids": row.key_ids} for row in rows]
    )


class KeyRows:
    """Rows per key id, and the rows not under the current keys, moved a batch at a time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def key_counts(self) -> list[KeyCount]:
        """Rows per key id, per table and key column (a full scan of each table)."""
        counted = [
            (name, table, column)
            for name, table in CODE_TABLES.items()
            for column in ("key_id", "lookup_key_id")
        ]
        counted += [(RESPONSES, _responses, "key_id"), (RESPONSES, _responses, "request_key_id")]
        found = []
        with self._engine.connect() as connection:
            connection = connection.execution_options(**{READ_ONLY: True})
            for name, table, column in counted:
                key = table.c[column]
                statement = select(key, func.count()).group_by(key).order_by(key)
                for row in connection.execute(statement):
                    if row[0] or column == "request_key_id":  # a response being written has no key yet
                        found.append(KeyCount(name, column, row[0] or UNKNOWN_KEY, int(row[1])))
        return found

    def count_stale(self, key_id: str, lookup_key_id: str) -> int:
        """Code rows (both tables) not sealed under these keys."""
        total = 0
        with self._engine.connect() as connection:
            connection = connection.execution_options(**{READ_ONLY: True})
            for table in CODE_TABLES.values():
                statement = (
                    select(func.count()).select_from(table).where(_stale(table, key_id, lookup_key_id))
                )
                total += int(connection.execute(statement).scalar_one())
        return total

    def pin_chain_counts(self) -> dict[str | None, int]:
        """Live codes with a PIN per chain of key ids (None: an argon2 hash from before keyed PINs).

        A revoked code's PIN is never checked again, so it needs no key.
        """
        statement = (
            select(_pins.c.pin_key_ids, func.count())
            .where(_pins.c.pin_hash.is_not(None), _pins.c.revoked_at.is_(None))
            .group_by(_pins.c.pin_key_ids)
        )
        with self._engine.connect() as connection:
            connection = connection.execution_options(**{READ_ONLY: True})
            return {row[0]: int(row[1]) for row in connection.execute(statement)}

    def reseal_batches(
        self,
        table_name: str,
        key_id: str,
        lookup_key_id: str,
        batch_size: int,
        reseal: Callable[[SealedRow], Resealed],
    ) -> Iterator[int]:
        """Rewrite the rows of ``table_name`` not sealed under these keys as ``reseal`` makes them,
        in id order, one transaction per batch holding its rows locked; yields each committed batch's size."""
        after_id = 0
        while True:
            with self._engine.begin() as connection:
                rows = _stale_rows(connection, table_name, key_id, lookup_key_id, after_id, batch_size)
                if not rows:
                    return
                resealed = [reseal(row) for row in rows]
                try:
                    _store_resealed(connection, table_name, resealed)
                except IntegrityError:
                    raise ConflictError(
                        f"{table_name}: two rows between ids {rows[0].id} and {rows[-1].id} hold the same "
                        "code under different lookup keys; revoke one of them and run again"
                    ) from None
            yield len(rows)
            after_id = rows[-1].id

    def wrap_pin_batches(
        self, current: str, batch_size: int, wrap: Callable[[PinRow], PinRow | None]
    ) -> Iterator[int]:
        """Rewrite the keyed PINs not under ``current`` as ``wrap`` makes them (None: left as they are),
        in id order, one transaction per batch holding its rows locked; yields each committed batch's size."""
        after_id = 0
        while True:
            with self._engine.begin() as connection:
                stale = _stale_pin_rows(connection, current, after_id, batch_size)
                if not stale:
                    return
                _store_pins(connection, [new for new in map(wrap, stale) if new is not None])
            yield len(stale)
            after_id = stale[-1].id
