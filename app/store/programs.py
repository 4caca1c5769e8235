"""The programs table: a store's programs read and written, one default per store, whether a program
has cards; and the daily-load columns of a card, moved in the statement that moves its money.

Writes run on the mutation's session; listings read through :class:`ProgramStore`. Every read is
narrowed to the caller's stores (None: every store), so another store's program is never seen.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, case, exc, insert, literal, select, update
from sqlmodel import Session

from app.db import READ_ONLY
from app.entities import CodeFormat, Program
from app.enums import ExpiryKind
from app.errors import ConflictError
from app.ids import new_id
from app.models import GiftCard, Store
from app.program_models import Program as ProgramRow
from app.store.scope import Stores, in_stores

_programs = ProgramRow.__table__  # type: ignore[attr-defined]
_cards = GiftCard.__table__  # type: ignore[attr-defined]
_stores = Store.__table__  # type: ignore[attr-defined]


def _program(row: Row[Any]) -> Program:
    """The one place a programs row becomes a Program."""
    values = row._mapping
    return Program(
        id=values["id"],
        store_id=values["store_id"],
        code=values["code"],
        name=values["name"],
        currency=values["currency"],
        code_format=CodeFormat(values["code_prefix"], values["code_length"], values["code_check_character"]),
        denominations=tuple(json.loads(values["denominations"] or "[]")),
        min_value=values["min_value"],
        max_value=values["max_value"],
        value_changes_allowed=values["value_changes_allowed"],
        expiry_kind=ExpiryKind(values["expiry_kind"]),
        expiry_days=values["expiry_days"],
        max_balance=values["max_balance"],
        max_daily_load=values["max_daily_load"],
        is_default=values["is_default"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
    )


def find_program(
    session: Session, program_id: int, stores: Stores, *, lock: bool = False, share: bool = False
) -> Program | None:
    """The program, if it is in one of ``stores``; locked for the transaction with ``lock``, or
    shared with ``share`` (other readers go on, an edit waits: a card issued under it sees the
    currency and code format the edit's frozen check sees)."""
    statement = select(_programs).where(
        _programs.c.id == program_id, *in_stores(_programs.c.store_id, stores)
    )
    if lock or share:
        statement = statement.with_for_update(read=share and not lock)
    row = session.execute(statement).first()
    return None if row is None else _program(row)


def default_program(session: Session, store_id: str) -> Program | None:
    """The program a card of ``store_id`` issued without a program takes (share-locked, as
    :func:`find_program` with ``share``); None when it has none."""
    statement = select(_programs).where(_programs.c.store_id == store_id, _programs.c.is_default)
    row = session.execute(statement.with_for_update(read=True)).first()
    return None if row is None else _program(row)


def has_cards(session: Session, program_id: int) -> bool:
    statement = select(literal(1)).select_from(_cards).where(_cards.c.program_id == program_id).limit(1)
    return session.execute(statement).first() is not None


def add_program(session: Session, store_id: str, columns: dict[str, Any], now: datetime) -> Program:
    """Insert a program of ``store_id`` (the default one when ``columns`` say so)."""
    program_id = new_id()
    values = {**columns, "id": program_id, "store_id": store_id, "created_at": now, "updated_at": now}
    _write(session, store_id, columns, insert(_programs).values(**values))
    found = find_program(session, program_id, None)
    assert found is not None
    return found


def edit_program(session: Session, program: Program, columns: dict[str, Any], now: datetime) -> Program:
    """Write ``columns`` over ``program`` (found locked, in the caller's stores)."""
    statement = update(_programs).where(_programs.c.id == program.id).values(**columns, updated_at=now)
    _write(session, program.store_id, columns, statement, keep=program.id)
    found = find_program(session, program.id, None)
    assert found is not None
    return found


def _write(session: Session, store_id: str, columns: dict[str, Any], statement: Any, keep: int = 0) -> None:
    """Run ``statement`` in a savepoint, moving the store's default first when the row becomes it.
    A clash is a CONFLICT and the rest of the transaction stands (only the savepoint rolls back)."""
    try:
        with session.begin_nested():
            if columns["is_default"]:
                # Before the write: the partial unique index allows one default per store.
                session.execute(
                    update(_programs)
                    .where(_programs.c.store_id == store_id, _programs.c.is_default, _programs.c.id != keep)
                    .values(is_default=False)
                )
            session.execute(statement)
    except exc.IntegrityError:
        raise _clash(session, store_id, columns["code"], keep) from None


def _clash(session: Session, store_id: str, code: str, keep: int) -> ConflictError:
    """Which unique rule a write broke: the store's codes, else its one default (taken by another
    program made the default at the same moment)."""
    same_code = select(_programs.c.id).where(
        _programs.c.store_id == store_id, _programs.c.code == code, _programs.c.id != keep
    )
    if session.execute(same_code).first() is not None:
        return ConflictError(f"code: the store already has a program {code}", field="code")
    return ConflictError(
        "is_default: another program became the store's default at the same moment; try again",
        field="is_default",
    )


def daily_load(amount: int, today: date, limit: int | None) -> tuple[dict[str, Any], ColumnElement[bool]]:
    """The giftcards columns to set for a load of ``amount`` on ``today`` (UTC), and the condition
    that keeps the day's loads within ``limit`` (true when None). Both go into the one conditional
    UPDATE that moves the money, so two loads at once cannot both pass the limit."""
    loaded = case((_cards.c.loaded_day == today, _cards.c.loaded_today), else_=0) + amount
    values = {"loaded_day": today, "loaded_today": loaded}
    condition: ColumnElement[bool] = literal(True) if limit is None else loaded <= limit
    return values, condition


class ProgramStore:
    """Reads programs for listings, on a read-only connection."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list(self, stores: Stores) -> list[Program]:
        """The programs of ``stores``, by store and code."""
        statement = (
            select(_programs)
            .where(*in_stores(_programs.c.store_id, stores))
            .order_by(_programs.c.store_id, _programs.c.code)
        )
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return [_program(row) for row in connection.execute(statement)]

    def get(self, program_id: int) -> Program | None:
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            row = connection.execute(select(_programs).where(_programs.c.id == program_id)).first()
        return None if row is None else _program(row)

    def store_exists(self, store_id: str) -> bool:
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return (
                connection.execute(select(_stores.c.id).where(_stores.c.id == store_id)).first() is not None
            )
