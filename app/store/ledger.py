"""Ledger queries: the live code behind an address, open holds, balance changes, ledger rows
(written with Core statements that return the row), verification."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, and_, bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select, Update
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session

from app.db import READ_ONLY, one_statement_reads
from app.entities import Transaction
from app.enums import TransStatus, TransType
from app.models import GiftCard, GiftCardCode, LedgerEntry
from app.store.prepared import Prepared, binds, one_statement
from app.store.scope import Stores, in_stores

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_codes = GiftCardCode.__table__  # type: ignore[attr-defined]
_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]
# The Transaction fields a ledger row (with its card's currency) holds under the same names (it
# keeps only the hash of an authorization's auth_code).
_ROW_FIELDS = tuple(
    item.name
    for item in fields(Transaction)
    if item.name not in ("balance", "available_balance", "auth_code")
)


def transaction_from_row(
    row: Mapping[str, Any], *, balance: int | None = None, available_balance: int | None = None
) -> Transaction:
    """The Transaction of a ledger row that also holds its card's ``currency``; ``balance`` is the
    card's balance when answered (after this entry, when not given)."""
    values = {name: row[name] for name in _ROW_FIELDS}
    values.update(trans_type=TransType(row["trans_type"]), status=TransStatus(row["status"]))
    balance = row["balance_after"] if balance is None else balance
    return Transaction(**values, balance=balance, available_balance=available_balance)


def open_debit_holds(now: datetime | ColumnElement[datetime]) -> list[ColumnElement[bool]]:
    """Ledger rows that hold money: debit authorizations whose hold has not lapsed at ``now``."""
    return [_ledger.c.status == "AUTHORIZED", _ledger.c.amount < 0, _ledger.c.hold_expires_at > now]


@dataclass(frozen=True, slots=True)
class AddressedCode:
    code_id: int
    giftcard_id: int
    expires_on: date | None
    pin_hash: str | None  # as read without a lock: checked again under it
    pin_key_ids: str | None


def code_matches(
    lookup_hashes: Sequence[bytes | BindParameter[bytes]],
    code_type: str | tuple[str, ...] | BindParameter[str] | None,
    stores: Sequence[Any] | None,
    *,
    revoked: bool = False,
) -> list[ColumnElement[bool]]:
    """A code of this type (or of one of these types) in ``stores`` with one of these lookup hashes
    (one per key), live or revoked; any of them may be bind parameters."""
    revoked_at = _codes.c.revoked_at
    return [
        _codes.c.lookup_hash.in_(list(lookup_hashes)),
        _codes.c.code_type.in_(code_type)
        if isinstance(code_type, tuple)
        else _codes.c.code_type == code_type,
        revoked_at.is_not(None) if revoked else revoked_at.is_(None),
        *in_stores(_codes.c.store_id, stores),
    ]


class LedgerStore:
    """The ledger's reads outside a unit of work, over one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._live: dict[tuple[int, int | None], Prepared] = {}  # live_codes', by shape

    def live_codes(
        self, lookup_hashes: Sequence[bytes], code_type: str, stores: Stores
    ) -> list[AddressedCode]:
        """The live (not revoked) codes of this type in ``stores`` with one of these lookup hashes:
        one per store at most (two when the code is in two of them)."""
        shape = (len(lookup_hashes), None if stores is None else len(stores))
        prepared = self._live.get(shape) or self._live.setdefault(shape, self._live_statement(*shape))
        params: dict[str, object] = {f"h{index}": value for index, value in enumerate(lookup_hashes)}
        params.update((f"s{index}", value) for index, value in enumerate(stores or ()))
        with one_statement(self._engine) as connection:
            rows = prepared.run(connection, code_type=code_type, **params)
        return [AddressedCode(*prepared.convert(row, 0, len(row))) for row in rows]

    def _live_statement(self, hashes: int, stores: int | None) -> Prepared:
        """live_codes' statement, its lookup hashes bound as h0…, the stores as s0…"""
        scope = None if stores is None else binds("s", stores)
        matches = code_matches(binds("h", hashes), bindparam("code_type"), scope)
        columns = ("id", "giftcard_id", "expires_on", "pin_hash", "pin_key_ids")  # AddressedCode's fields
        return Prepared(select(*(_codes.c[name] for name in columns)).where(*matches).limit(2), self._engine)

    def revoked_code_exists(self, lookup_hashes: Sequence[bytes], code_type: str, stores: Stores) -> bool:
        """Whether a revoked code of this type in ``stores`` has one of these lookup hashes."""
        matches = code_matches(lookup_hashes, code_type, stores, revoked=True)
        statement = select(_codes.c.id).where(*matches).limit(1)
        with one_statement_reads(self._engine) as connection:
            return connection.execute(statement).first() is not None


@dataclass(frozen=True, slots=True)
class LockedCode:
    """A code's PIN state, read under its row lock."""

    revoked: bool
    expires_on: date | None
    pin_hash: str | None
    pin_key_ids: str | None
    failed_pin_attempts: int
    pin_locked_until: datetime | None


def code_for_update(session: Session, code_id: int) -> LockedCode:
    """The code's PIN state, locked until the transaction ends (PostgreSQL; SQLite holds the write
    lock), so that PIN checks on one code happen one at a time."""
    # LockedCode's fields; revoked is whether the code has a revoked_at.
    columns = ("revoked_at", *(item.name for item in fields(LockedCode)[1:]))
    statement = select(*(_codes.c[name] for name in columns)).where(_codes.c.id == code_id).with_for_update()
    revoked_at, *state = session.execute(statement).one()
    return LockedCode(revoked_at is not None, *state)


def record_pin_failure(session: Session, code_id: int, max_failures: int, locked_until: datetime) -> None:
    """Count a wrong PIN; the one that reaches ``max_failures`` locks the code and restarts the count."""
    reaches = _codes.c.failed_pin_attempts + 1 >= max_failures
    session.execute(
        update(_codes)
        .where(_codes.c.id == code_id)
        .values(
            pin_locked_until=case((reaches, locked_until), else_=_codes.c.pin_locked_until),
            failed_pin_attempts=case((reaches, 0), else_=_codes.c.failed_pin_attempts + 1),
        )
    )


def record_pin_success(
    session: Session, code_id: int, value: str | None = None, key_ids: str | None = None
) -> None:
    """A right PIN ends the run of wrong ones; ``value`` (with its key ids) replaces the stored PIN
    when given (an argon2 hash, or a value rotation wrapped)."""
    values: dict[str, object] = {"failed_pin_attempts": 0}
    if value is not None:
        values.update(pin_hash=value, pin_key_ids=key_ids)
    session.execute(update(_codes).where(_codes.c.id == code_id).values(**values))


def held_amount(card_id: int, now: datetime) -> Select[Any]:
    """Minor units held by open, unexpired debit authorizations (a positive number)."""
    return select(func.coalesce(func.sum(-_ledger.c.amount), 0)).where(
        _ledger.c.giftcard_id == card_id, *open_debit_holds(now)
    )


def held(session: Session, card_id: int, now: datetime) -> int:
    return int(session.execute(held_amount(card_id, now)).scalar_one())


def change_balance(  # noqa: PLR0913  (one statement: its values and conditions come in from the rules)
    session: Session,
    card_id: int,
    amount: int,
    now: datetime,
    ceiling: int,
    values: Mapping[str, Any] | None = None,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> int | None:
    """Add ``amount`` unless that takes the balance below zero, a credit takes it over ``ceiling``
    or one of ``conditions`` fails (a credit also makes a PENDING card ACTIVE), setting ``values``
    as well; the new balance, or None.

    A refused credit only ever passed the ceiling and a refused debit only ever went below zero,
    so the sign of ``amount`` tells the caller which, without a second read. Debits are never held
    to the ceiling: a card above a lowered ceiling can still be spent.
    """
    statement = balance_update(card_id, amount, now, ceiling, values, conditions)
    row = session.execute(statement).first()  # after the session's pending ORM changes (autoflush)
    return None if row is None else int(row[0])


def balance_update(
    card_id: int,
    amount: int,
    now: datetime,
    ceiling: int,
    values: Mapping[str, Any] | None = None,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> Update:
    """The conditional UPDATE of :func:`change_balance`, returning the new balance."""
    # The balance is compared with bounds worked out here, not summed with the amount first: on a
    # balance already near the column's end that sum would overflow before the comparison.
    fits = and_(_cards.c.balance >= -amount, *conditions)
    changes: dict[str, Any] = {**(values or {}), "balance": _cards.c.balance + amount, "updated_at": now}
    if amount > 0:
        fits = and_(fits, _cards.c.balance <= ceiling - amount)
        # PENDING means never funded: any first credit ends it.
        changes["state"] = case((_cards.c.state == "PENDING", "ACTIVE"), else_=_cards.c.state)
    return update(_cards).where(_cards.c.id == card_id, fits).values(**changes).returning(_cards.c.balance)


def entry(session: Session, entry_id: int, *, lock: bool = False) -> Row[Any] | None:
    """The ledger row; with ``lock``, locked until the transaction ends (SQLite holds the write lock)."""
    statement = select(*_ledger.c).where(_ledger.c.id == entry_id)
    return session.execute(statement.with_for_update() if lock else statement).first()


def add_entry(session: Session, values: Mapping[str, Any]) -> Row[Any]:
    """Insert a ledger row; the row as stored."""
    return session.execute(insert(_ledger).values(**values).returning(*_ledger.c)).one()


def entry_by_auth_code(session: Session, code_hash: bytes) -> Row[Any] | None:
    """The ledger row of the authorization whose authCode has this hash, unlocked."""
    return session.execute(select(*_ledger.c).where(_ledger.c.auth_code_hash == code_hash)).first()


def add_authorization(session: Session, values: Mapping[str, Any]) -> Row[Any] | None:
    """Insert an authorization's ledger row unless its ``auth_code_hash`` is another row's (then
    nothing is written, and None); the row as stored."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(_ledger)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[_ledger.c.auth_code_hash])
        .returning(*_ledger.c)
    )
    return session.execute(statement).first()


def settle_entry(session: Session, entry_id: int, values: Mapping[str, Any]) -> Row[Any]:
    """Change an AUTHORIZED row (locked by the caller) as its capture or cancel does; the row as stored."""
    statement = update(_ledger).where(_ledger.c.id == entry_id).values(**values).returning(*_ledger.c)
    return session.execute(statement).one()


@dataclass(frozen=True, slots=True)
class LedgerDifference:
    giftcard_id: int
    stored_balance: int
    ledger_balance: int
    held: int


VERIFY_BATCH = 10_000  # rows fetched at a time: a server-side cursor on PostgreSQL


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    checked: int  # cards
    found: int  # cards that disagree
    differences: list[LedgerDifference]  # the first of them, at most the ``keep`` asked for


def verify(engine: Engine, now: datetime) -> tuple[int, list[LedgerDifference]]:
    """Every card's stored balance against the sum of its completed entries, and its holds: how
    many cards were checked, and those that disagree (or whose holds exceed the balance)."""
    result = check(engine, now)
    return result.checked, result.differences


def check(
    engine: Engine, now: datetime, *, keep: int | None = None, progress: Callable[[int], None] | None = None
) -> LedgerCheck:
    """:func:`verify` in bounded memory: rows stream in batches, and only the first ``keep``
    differences are kept (None: all); ``progress`` hears the cards checked after each batch."""
    completed = func.coalesce(func.sum(case((_ledger.c.status == "COMPLETED", _ledger.c.amount), else_=0)), 0)
    holds = func.coalesce(func.sum(case((and_(*open_debit_holds(now)), -_ledger.c.amount), else_=0)), 0)
    statement = (
        select(_cards.c.id, _cards.c.balance, completed, holds)
        .select_from(_cards.outerjoin(_ledger, _ledger.c.giftcard_id == _cards.c.id))
        .group_by(_cards.c.id, _cards.c.balance)
    )
    checked, found = 0, 0
    differences: list[LedgerDifference] = []
    with engine.connect().execution_options(**{READ_ONLY: True, "yield_per": VERIFY_BATCH}) as connection:
        for batch in connection.execute(statement).partitions():
            for row in batch:
                card_id, stored, ledger_sum, on_hold = (int(value) for value in row)
                if stored != ledger_sum or on_hold > stored or stored < 0:
                    found += 1
                    if keep is None or len(differences) < keep:
                        differences.append(LedgerDifference(card_id, stored, ledger_sum, on_hold))
            checked += len(batch)
            if progress is not None:
                progress(checked)
    return LedgerCheck(checked, found, differences)
