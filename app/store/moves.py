"""A completed balance change with its ledger row and audit rows: on PostgreSQL one statement (the
conditional UPDATE of the card, and the INSERTs that take its new balance, as data-modifying CTEs),
elsewhere the same three statements one after another in the caller's transaction (SQLite has one
writer, which holds the lock). Either way nothing is written unless the card's update is.

The statements are prepared once per shape (database, debit or credit, the columns set, the audit
rows' number) with bound parameters (app.store.prepared), so that a call only binds its values and
runs them on the transaction's DBAPI connection. A change with conditions of its own (a load's
daily limit) is built per call and runs through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    case,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.sql import Select, Update
from sqlalchemy.sql.expression import ReturnsRows
from sqlmodel import Session

from app.ids import new_id
from app.models import AuditEvent, GiftCard, LedgerEntry
from app.store import audit
from app.store.audit import RECORD_FIELDS, AuditRecord
from app.store.ledger import add_entry, balance_update
from app.store.prepared import in_transaction, prepared, run_together

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]
_audit = AuditEvent.__table__  # type: ignore[attr-defined]
# Set on the session once a move has written the mutation's audit rows (the runner then does not).
_AUDITED = "giftcards.audited"
# The two halves of what lets a move send its transaction's COMMIT with it (see last_write).
_ENDS_AFTER_WORK = "giftcards.ends_after_work"
_LAST_WRITE = "giftcards.last_write"


class BalanceChange(NamedTuple):
    """The arguments of :func:`app.store.ledger.change_balance` after the session, in its order."""

    card_id: int
    amount: int
    now: datetime
    ceiling: int
    values: Mapping[str, Any]
    conditions: Sequence[ColumnElement[bool]]


def move(
    session: Session, change: BalanceChange, entry: Mapping[str, Any], records: Sequence[AuditRecord]
) -> dict[str, Any] | None:
    """Apply ``change``; if its conditions hold, insert the ledger row ``entry`` (its balance_after
    the new balance) and the audit ``records``, and return the ledger row as stored. None, and
    nothing written, when a condition refused the change."""
    values = {"id": new_id(), **entry}
    one = session.get_bind().dialect.name == "postgresql"
    row: dict[str, Any] | None
    commit = session.info.pop(_LAST_WRITE, False) and session.info.get(_ENDS_AFTER_WORK, False)
    if _prebuilt(change):
        row = _bound(session, one, change, values, records, commit)
    elif one:
        found = _in_one_statement(session.connection(), change, values, records)
        row = None if found is None else dict(found._mapping)
    else:
        found = _one_by_one(session, session.connection(), change, values, records)
        row = None if found is None else dict(found._mapping)
    if row is not None:
        session.info[_AUDITED] = True
    return row


def ends_after_work(session: Session) -> None:
    """Said by a runner whose transaction writes nothing after its work (no key to seal)."""
    session.info[_ENDS_AFTER_WORK] = True


def last_write(session: Session, last: bool) -> None:
    """Said by work whose next move will be its last write, when ``last``. If its runner said
    :func:`ends_after_work` too, on PostgreSQL the move goes with the transaction's COMMIT in one
    pipeline: a round trip fewer, and the card's lock let go one round trip sooner. A move that
    fails aborts the transaction before its COMMIT runs; one whose condition refuses it commits what
    came before it. So work that wrote first and whose move may be refused (a right PIN ending a run
    of wrong ones, then a credit over the ceiling) does not say so. A debit's move is not refused:
    its amount was checked against the locked balance first."""
    session.info[_LAST_WRITE] = last


def audited(session: Session) -> bool:
    """Whether a move wrote this transaction's audit rows (once: the flag is cleared)."""
    return bool(session.info.pop(_AUDITED, False))


def _prebuilt(change: BalanceChange) -> bool:
    """Whether the change fits a prebuilt statement: no conditions, plain values only."""
    return not change.conditions and not any(
        isinstance(value, ColumnElement) for value in change.values.values()
    )


def _bound(
    session: Session,
    one: bool,
    change: BalanceChange,
    values: Mapping[str, Any],
    records: Sequence[AuditRecord],
    commit: bool,
) -> dict[str, Any] | None:
    """The move through the statements prepared for its shape, its values bound; on PostgreSQL
    with ``commit``, sent with the transaction's COMMIT."""
    connection, dialect = in_transaction(session)
    card_id, amount, now, ceiling, set_values, _ = change
    params: dict[str, Any] = {"card_id": card_id, "amount": amount, "now": now, "floor": -amount}
    params.update({f"set_{name}": value for name, value in set_values.items()})
    if amount > 0:
        params["top"] = ceiling - amount
    credit, set_names, names = amount > 0, tuple(set_values), tuple(values)
    params.update({f"e_{name}": value for name, value in values.items()})
    if one:
        for index, record in enumerate(records):
            params[f"a{index}_id"] = new_id()
            params.update({f"a{index}_{name}": value for name, value in audit.record_values(record).items()})
        shape = ("move", credit, set_names, names, len(records))
        statement = prepared(dialect, shape, lambda: _statement(credit, set_names, names, len(records)))
        (rows,) = run_together(connection, (statement, params), commit=commit)
        return statement.named(rows[0]) if rows else None
    moved = prepared(dialect, ("update", credit, set_names), lambda: _update(credit, set_names))
    balance = moved.run(connection, **params)
    if not balance:
        return None
    added = prepared(dialect, ("entry", names), lambda: _entry(names)).first(
        connection, **params, e_balance_after=balance[0][0]
    )
    written = prepared(dialect, "audit", _audit_row)
    for record in records:
        written.run(connection, id=new_id(), **{f"a_{k}": v for k, v in audit.record_values(record).items()})
    return added


@lru_cache(maxsize=64)
def _update(credit: bool, set_names: tuple[str, ...]) -> Update:
    """The conditional UPDATE of :func:`app.store.ledger.balance_update`, its values bound: the
    balance compared with bounds worked out before (floor, top), as there."""
    fits = and_(_cards.c.id == bindparam("card_id"), _cards.c.balance >= bindparam("floor"))
    changes: dict[str, Any] = {
        name: bindparam(f"set_{name}", type_=_cards.c[name].type) for name in set_names
    }
    changes.update(
        balance=_cards.c.balance + bindparam("amount"),
        updated_at=bindparam("now", type_=_cards.c.updated_at.type),
    )
    if credit:
        fits = and_(fits, _cards.c.balance <= bindparam("top"))
        changes["state"] = case((_cards.c.state == "PENDING", "ACTIVE"), else_=_cards.c.state)
    return update(_cards).where(fits).values(**changes).returning(_cards.c.balance)


def _entry(names: tuple[str, ...]) -> ReturnsRows:
    """A ledger row's INSERT, its values bound as e_<column>, returning the row as stored."""
    columns = (*names, "balance_after")
    bound = {name: bindparam(f"e_{name}", type_=_ledger.c[name].type) for name in columns}
    return insert(_ledger).values(**bound).returning(*_ledger.c)


def _audit_row() -> ReturnsRows:
    """An audit row's INSERT, its id bound as id, its values as a_<column>."""
    bound = {name: bindparam(f"a_{name}", type_=_audit.c[name].type) for name in RECORD_FIELDS}
    return insert(_audit).values(id=bindparam("id", type_=_audit.c.id.type), **bound)


@lru_cache(maxsize=64)
def _statement(credit: bool, set_names: tuple[str, ...], names: tuple[str, ...], records: int) -> Select[Any]:
    """The one PostgreSQL statement of a move of this shape, with bound parameters."""
    moved = _update(credit, set_names).cte("moved")
    entry = select(*(bindparam(f"e_{name}", type_=_ledger.c[name].type) for name in names), moved.c.balance)
    added = insert(_ledger).from_select([*names, "balance_after"], entry).returning(*_ledger.c).cte("added")
    statement = select(*added.c)
    if not records:
        return statement
    rows = [
        select(
            *(bindparam(f"a{index}_{name}", type_=_audit.c[name].type) for name in ("id", *RECORD_FIELDS))
        ).select_from(added)
        for index in range(records)
    ]
    source = rows[0] if records == 1 else union_all(*rows)
    return statement.add_cte(insert(_audit).from_select(["id", *RECORD_FIELDS], source).cte("audited"))


def _one_by_one(
    session: Session,
    connection: Connection,
    change: BalanceChange,
    values: Mapping[str, Any],
    records: Sequence[AuditRecord],
) -> Row[Any] | None:
    moved = connection.execute(balance_update(*change)).first()
    if moved is None:
        return None
    row = add_entry(session, {**values, "balance_after": moved[0]})
    audit.append(connection, records)
    return row


def _in_one_statement(
    connection: Connection, change: BalanceChange, values: Mapping[str, Any], records: Sequence[AuditRecord]
) -> Row[Any] | None:
    moved = balance_update(*change).cte("moved")
    names = [*values, "balance_after"]
    entry = select(*(literal(value, _ledger.c[name].type) for name, value in values.items()), moved.c.balance)
    added = insert(_ledger).from_select(names, entry).returning(*_ledger.c).cte("added")
    statement = select(*added.c)
    if records:
        rows = [
            select(
                literal(new_id(), _audit.c.id.type),
                *(literal(value, _audit.c[name].type) for name, value in audit.record_values(record).items()),
            ).select_from(added)
            for record in records
        ]
        source = rows[0] if len(rows) == 1 else union_all(*rows)
        written = insert(_audit).from_select(["id", *RECORD_FIELDS], source).cte("audited")
        statement = statement.add_cte(written)
    return connection.execute(statement).first()
