"""Prebuilt statements for the hot paths: a SQLAlchemy Core statement compiled once for a dialect
and run on a raw DBAPI connection (a pooled one to read, or a unit of work's, inside its
transaction), since building and executing a statement through SQLAlchemy costs far more than
running it."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, bindparam
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.expression import ReturnsRows
from sqlmodel import Session

from app.db import TRACED


class Prepared:
    """A Core statement compiled once and executed on a raw DBAPI cursor. Values are bound as
    SQLAlchemy would bind them (SQLite keeps dates and times as text). Rows come back as the driver
    gives them; :meth:`convert` converts the columns a caller reads as SQLAlchemy would, so values
    read once per card are converted once."""

    def __init__(self, statement: ReturnsRows, target: Engine | Dialect) -> None:
        dialect = target.dialect if isinstance(target, Engine) else target
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._order = compiled.positiontup if compiled.positional else None
        # Values the statement binds itself (a LIMIT's, say); the caller's are added at each run.
        self._fixed = {name: value for name, value in compiled.params.items() if value is not None}
        bound = (
            (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in compiled.binds.items()
        )
        self._binders = [(name, fn) for name, fn in bound if fn is not None]
        # Also whether it returns rows at all: read off the statement, not the cursor, whose
        # description psycopg builds anew each time it is asked.
        self.columns = tuple(column.key for column in statement.exported_columns)
        processors = (
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.exported_columns
        )
        self._processors = [(index, fn) for index, fn in enumerate(processors) if fn is not None]

    def run(self, connection: Any, **params: Any) -> list[Sequence[Any]]:
        """The rows (none for a statement that returns none)."""
        args = self.args(params)
        if isinstance(connection, Connection):  # traced: as the text it is, through SQLAlchemy's events
            result = connection.exec_driver_sql(self.sql, args)
            return list(result.fetchall()) if result.returns_rows else []
        with closing(connection.cursor()) as cursor:
            cursor.execute(self.sql, args)
            return list(cursor.fetchall()) if self.columns else []

    def args(self, params: dict[str, Any]) -> Any:
        """The values to execute the statement with, bound (into ``params``, which must be the
        caller's own dict), in the driver's order."""
        if self._fixed:
            params = {**self._fixed, **params}
        for name, bind in self._binders:
            if (value := params.get(name)) is not None:
                params[name] = bind(value)
        return tuple(params[name] for name in self._order) if self._order is not None else params

    def convert(self, row: Sequence[Any], start: int, stop: int) -> list[Any]:
        """The values of ``row[start:stop]`` as SQLAlchemy gives them (None stays None)."""
        values = list(row[start:stop])
        for index, process in self._processors:
            if start <= index < stop and (value := values[index - start]) is not None:
                values[index - start] = process(value)
        return values

    def first(self, connection: Any, **params: Any) -> dict[str, Any] | None:
        """The first row as SQLAlchemy would give it, by column name; None when there is none."""
        rows = self.run(connection, **params)
        return self.named(rows[0]) if rows else None

    def named(self, row: Sequence[Any]) -> dict[str, Any]:
        """``row`` as SQLAlchemy would give it, by column name."""
        return dict(zip(self.columns, self.convert(row, 0, len(self.columns)), strict=True))


def run_together(
    connection: Any, *calls: tuple[Prepared, dict[str, Any]], commit: bool = False
) -> list[list[Sequence[Any]]]:
    """Each statement's rows, in order. On psycopg they are sent at once, in one pipeline (with the
    transaction's BEGIN when they start it): one round trip for all. The server still runs them one
    after the other, each with its own snapshot, as if sent apart. Elsewhere, one after the other.
    With ``commit``, psycopg's pipeline ends with the transaction's COMMIT, which then runs only if
    they all succeeded (the caller's own commit finds nothing left to do); elsewhere that commit
    follows as usual."""
    pipeline = getattr(connection, "pipeline", None)  # a pooled DBAPI connection passes it on
    if isinstance(connection, Connection) or pipeline is None:
        return [statement.run(connection, **params) for statement, params in calls]
    cursors = [connection.cursor() for _ in calls]
    try:
        with pipeline():
            for cursor, (statement, params) in zip(cursors, calls, strict=True):
                cursor.execute(statement.sql, statement.args(dict(params)))  # calls may share one dict
            if commit:  # as a statement: psycopg's own commit() would wait for its answer alone
                cursors.append(connection.cursor())
                cursors[-1].execute("COMMIT")
        return [
            list(cursor.fetchall()) if statement.columns else []
            for cursor, (statement, _) in zip(cursors[: len(calls)], calls, strict=True)
        ]
    finally:
        for cursor in cursors:
            cursor.close()


_BUILT: dict[tuple[type[Dialect], str, Hashable], Prepared] = {}


def prepared(dialect: Dialect, key: Hashable, build: Callable[[], ReturnsRows]) -> Prepared:
    """The statement ``build`` makes for ``key``, compiled once per kind of dialect."""
    full = (type(dialect), dialect.paramstyle, key)
    found = _BUILT.get(full)
    return found if found is not None else _BUILT.setdefault(full, Prepared(build(), dialect))


def in_transaction(session: Session) -> tuple[Any, Dialect]:
    """The DBAPI connection of the session's transaction (begun if it was not) and its dialect, to
    run prepared statements on (the SQLAlchemy connection when the engine is traced); what the
    session has pending is flushed first, in order."""
    session.flush()
    connection = session.connection()
    traced = connection.get_execution_options().get(TRACED)
    return connection if traced else connection.connection, connection.dialect


def binds(prefix: str, count: int) -> list[BindParameter[Any]]:
    """``count`` bind parameters named ``prefix`` and their index (a prepared statement's values)."""
    return [bindparam(f"{prefix}{index}") for index in range(count)]


@contextmanager
def one_statement(engine: Engine) -> Iterator[Any]:
    """A pooled DBAPI connection for one statement, back to the pool after: a read, or on
    PostgreSQL a call that writes. There it runs in autocommit: the statement is its own
    transaction, with no BEGIN before it nor COMMIT or ROLLBACK after (two round trips fewer).
    SQLite's connections read in autocommit already."""
    connection = engine.raw_connection()
    driver = connection.driver_connection if engine.dialect.name == "postgresql" else None
    try:
        if driver is not None:
            driver.autocommit = True
        yield connection
    finally:
        try:
            if driver is not None and not driver.closed:
                driver.autocommit = False  # as the pool hands its connections out
        finally:
            connection.close()


@contextmanager
def one_write(engine: Engine) -> Iterator[Any]:
    """A pooled connection for one statement that writes, its own transaction (autocommit): as
    :func:`one_statement`, but through SQLAlchemy when the engine is traced, as a transaction's
    statements are (:func:`in_transaction`), so that it keeps its span."""
    if not engine.get_execution_options().get(TRACED):
        with one_statement(engine) as connection:
            yield connection
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection
