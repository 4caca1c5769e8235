"""Key queries: rows per key id, and rows moved to the current keys a batch at a time.

Sealed code rows (cards' codes and reserved stock) carry their AEAD key id (``key_id``) and HMAC
lookup key id (``lookup_key_id``). Stored idempotent responses carry both too; they expire, so they
are counted but never moved. Keyed PINs carry the chain of PIN key ids that made them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.db import READ_ONLY
from app.errors import ConflictError
from app.models import GiftCardCode, IdempotencyKey, ReservedCode

_pins: Table = GiftCardCode.__table__  # type: ignore[attr-defined]
CODE_TABLES: tuple[Table, ...] = (_pins, ReservedCode.__table__)  # type: ignore[attr-defined]
_responses: Table = IdempotencyKey.__table__  # type: ignore[attr-defined]
PIN_TABLE = _pins.name
UNKNOWN_KEY = ""  # requests digested before their key id was stored: any lookup key may have

Moved = TypeVar("Moved", bound="SealedRow | PinRow")


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
    """A code row's new values; the fields are its columns."""

    id: int
    lookup_hash: bytes
    lookup_key_id: str
    ciphertext: bytes
    key_id: str


@dataclass(frozen=True, slots=True)
class PinRow:
    """A keyed PIN (the fields are its code row's columns)."""

    id: int
    pin_hash: str
    pin_key_ids: str


def _stale(table: Table, key_id: str, lookup_key_id: str) -> Any:
    return or_(table.c.key_id != key_id, table.c.lookup_key_id != lookup_key_id)


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


def _rewrite(connection: Connection, table: Table, rows: Sequence[Resealed | PinRow]) -> None:
    """Set the columns of each row (by ``id``) to its fields' values, in one executemany."""
    # Parameters are named row_<column>: SQLAlchemy keeps the column's own name for its SET value.
    names = [item.name for item in fields(rows[0]) if item.name != "id"]
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({name: bindparam(f"row_{name}") for name in names})
    )
    connection.execute(
        statement, [{f"row_{name}": value for name, value in asdict(row).items()} for row in rows]
    )


class KeyRows:
    """Rows per key id, and the rows not under the current keys, moved a batch at a time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def key_counts(self) -> list[KeyCount]:
        """Rows per key id, per table and key column (a full scan of each table)."""
        counted = [(table, column) for table in CODE_TABLES for column in ("key_id", "lookup_key_id")]
        counted += [(_responses, "key_id"), (_responses, "request_key_id")]
        found = []
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            for table, column in counted:
                key = table.c[column]
                statement = select(key, func.count()).group_by(key).order_by(key)
                for row in connection.execute(statement):
                    if row[0] or column == "request_key_id":  # a response being written has no key yet
                        found.append(KeyCount(table.name, column, row[0] or UNKNOWN_KEY, int(row[1])))
        return found

    def count_stale(self, key_id: str, lookup_key_id: str) -> int:
        """Code rows (both tables) not sealed under these keys."""
        counts = [
            select(func.count()).select_from(table).where(_stale(table, key_id, lookup_key_id))
            for table in CODE_TABLES
        ]
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return sum(int(connection.execute(count).scalar_one()) for count in counts)

    def pin_chain_counts(self) -> dict[str | None, int]:
        """Live codes with a PIN per chain of key ids (None: an argon2 hash from before keyed PINs);
        a revoked code's PIN is never checked again, so it needs no key."""
        statement = (
            select(_pins.c.pin_key_ids, func.count())
            .where(_pins.c.pin_hash.is_not(None), _pins.c.revoked_at.is_(None))
            .group_by(_pins.c.pin_key_ids)
        )
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return {row[0]: int(row[1]) for row in connection.execute(statement)}

    def reseal_batches(
        self, key_id: str, lookup_key_id: str, batch_size: int, reseal: Callable[[SealedRow], Resealed]
    ) -> Iterator[int]:
        """Rewrite code rows (both tables) not under these keys as ``reseal`` makes them, by batches."""
        for table in CODE_TABLES:
            yield from self._batches(
                table, SealedRow, _stale(table, key_id, lookup_key_id), batch_size, reseal
            )

    def wrap_pin_batches(
        self, current: str, batch_size: int, wrap: Callable[[PinRow], PinRow | None]
    ) -> Iterator[int]:
        """Rewrite keyed PINs not under ``current`` as ``wrap`` makes them (None: kept), by batches."""
        return self._batches(_pins, PinRow, _pin_not_under(current), batch_size, wrap)

    def _batches(
        self,
        table: Table,
        shape: type[Moved],
        stale: Any,
        batch_size: int,
        rewrite: Callable[[Moved], Resealed | PinRow | None],
    ) -> Iterator[int]:
        """The rows ``stale`` selects, in id order, one transaction per batch holding its rows
        locked while they are rewritten; yields each committed batch's size."""
        # ``shape``'s fields are columns; reserved codes have no code_type column: they are PHYSICAL.
        columns = [
            table.c[item.name] if item.name in table.c else literal("PHYSICAL") for item in fields(shape)
        ]
        batch = select(*columns).where(stale).order_by(table.c.id).limit(batch_size).with_for_update()
        after_id = 0
        while True:
            with self._engine.begin() as connection:
                rows = [shape(*row) for row in connection.execute(batch.where(table.c.id > after_id))]
                if not rows:
                    return
                try:
                    _rewrite(connection, table, [new for new in map(rewrite, rows) if new is not None])
                except IntegrityError:  # a code's new lookup hash is another row's
                    raise ConflictError(
                        f"{table.name}: two rows between ids {rows[0].id} and {rows[-1].id} hold the same "
                        "code under different lookup keys; revoke one of them and run again"
                    ) from None
            yield len(rows)
            after_id = rows[-1].id
