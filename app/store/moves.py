"""A completed balance change with its ledger row and audit rows: on PostgreSQL one statement (the
conditional UPDATE of the card, and the INSERTs that take its new balance, as data-modifying CTEs),
elsewhere the same three statements one after another in the caller's transaction (SQLite has one
writer, which holds the lock). Either way nothing is written unless the card's update is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Row, insert, literal, select, union_all
from sqlmodel import Session

from app.ids import new_id
from app.models import AuditEvent, LedgerEntry
from app.store import audit
from app.store.audit import AuditRecord
from app.store.ledger import add_entry, balance_update

_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]
_audit = AuditEvent.__table__  # type: ignore[attr-defined]
_RECORD_FIELDS = tuple(item.name for item in fields(AuditRecord))
# Set on the session once a move has written the mutation's audit rows (the runner then does not).
_AUDITED = "giftcards.audited"


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
) -> Row[Any] | None:
    """Apply ``change``; if its conditions hold, insert the ledger row ``entry`` (its balance_after
    the new balance) and the audit ``records``, and return the ledger row as stored. None, and
    nothing written, when a condition refused the change."""
    connection = session.connection()
    values = {"id": new_id(), **entry}
    if connection.dialect.name == "postgresql":
        row = _in_one_statement(connection, change, values, records)
    else:
        row = _one_by_one(session, connection, change, values, records)
    if row is not None:
        session.info[_AUDITED] = True
    return row


def audited(session: Session) -> bool:
    """Whether a move wrote this transaction's audit rows (once: the flag is cleared)."""
    return bool(session.info.pop(_AUDITED, False))


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
                *(literal(value, _audit.c[name].type) for name, value in asdict(record).items()),
            ).select_from(added)
            for record in records
        ]
        source = rows[0] if len(rows) == 1 else union_all(*rows)
        written = insert(_audit).from_select(["id", *_RECORD_FIELDS], source).cte("audited")
        statement = statement.add_cte(written)
    return connection.execute(statement).first()
