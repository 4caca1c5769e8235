"""The audit trail's table: append events (on the caller's session or connection, so a mutation's
events commit or roll back with it) and read a filtered page of them. Rows are only ever inserted:
database triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, insert, select
from sqlmodel import Session

from app.db import READ_ONLY
from app.models import AuditEvent
from app.store.scope import Stores, in_stores

_audit = AuditEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One event to append: who, what, which card, when. Never a code, PIN or secret."""

    occurred_at: datetime
    action: str
    outcome: str
    subject: str | None
    giftcard_id: int | None
    field: str | None
    request_id: str | None
    client_address: str | None
    count: int = 1  # refusals of one subject, operation and outcome in one minute; else 1
    store_id: str | None = None  # the card's store, else the caller's one store; None: neither


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRow(AuditRecord):
    """A stored event: the record and its id."""

    id: int


# The columns behind AuditRow, in field order.
_ROW_COLUMNS = tuple(_audit.c[column.name] for column in fields(AuditRow))


@dataclass(frozen=True, slots=True)
class AuditCriteria:
    """Which events to list; None means no condition (but for ``stores``, where it means every
    store, and events of none). Times are UTC."""

    stores: Stores  # the caller's (Principal.store_ids())
    after_id: int | None = None
    subject: str | None = None
    giftcard_id: int | None = None
    action: str | None = None
    outcome: str | None = None
    occurred_from: datetime | None = None  # inclusive
    occurred_before: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class AuditSlice:
    events: list[AuditRow]  # in id order
    more: bool  # further events match after the last one


RECORD_FIELDS = tuple(item.name for item in fields(AuditRecord))


def record_values(record: AuditRecord) -> dict[str, Any]:
    """The record's columns and values (a shallow copy: dataclasses.asdict copies each value deep)."""
    return {name: getattr(record, name) for name in RECORD_FIELDS}


def append(target: Session | Connection, records: Sequence[AuditRecord]) -> None:
    """Insert the records (one executemany) in the transaction ``target`` is in."""
    if not records:
        return
    connection = target.connection() if isinstance(target, Session) else target
    connection.execute(insert(_audit), [record_values(record) for record in records])


class AuditStore:
    """Reads the trail back, on a pooled connection that only reads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def events(self, criteria: AuditCriteria, limit: int) -> AuditSlice:
        """Up to ``limit`` matching events after ``criteria.after_id``, and whether more follow."""
        # One row beyond the page says whether there is a next page.
        statement = select(*_ROW_COLUMNS).where(*_conditions(criteria)).order_by(_audit.c.id).limit(limit + 1)
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            rows = connection.execute(statement).all()
        return AuditSlice([AuditRow(**row._asdict()) for row in rows[:limit]], more=len(rows) > limit)


def _conditions(criteria: AuditCriteria) -> list[ColumnElement[bool]]:
    conditions = in_stores(_audit.c.store_id, criteria.stores)
    if criteria.after_id is not None:
        conditions.append(_audit.c.id > criteria.after_id)
    for name in ("subject", "giftcard_id", "action", "outcome"):  # the criteria's and the columns' names
        if (value := getattr(criteria, name)) is not None:
            conditions.append(_audit.c[name] == value)
    if criteria.occurred_from is not None:
        conditions.append(_audit.c.occurred_at >= criteria.occurred_from)
    if criteria.occurred_before is not None:
        conditions.append(_audit.c.occurred_at < criteria.occurred_before)
    return conditions
