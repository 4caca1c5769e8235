"""Prebuilt reads for the hot path: a SQLAlchemy Core statement compiled once for the engine's
dialect and run on a raw pooled DBAPI connection, since building an ORM query costs far more than
running it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any

from sqlalchemy import Engine, bindparam
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter


class Prepared:
    """A Core statement compiled once and executed on a raw DBAPI cursor. Its rows come back as the
    driver gives them; :meth:`convert` converts the columns a caller reads as SQLAlchemy would
    (SQLite hands back dates and times as text), so values read once per card are converted once."""

    def __init__(self, statement: Select[Any], engine: Engine) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self._order = compiled.positiontup if compiled.positional else None
        # Values the statement binds itself (a LIMIT's, say); the caller's are added at each run.
        self._fixed = {name: value for name, value in compiled.params.items() if value is not None}
        processors = (
            column.type.dialect_impl(engine.dialect).result_processor(engine.dialect, None)
            for column in statement.selected_columns
        )
        self._processors = [(index, fn) for index, fn in enumerate(processors) if fn is not None]

    def run(self, connection: Any, **params: Any) -> list[Sequence[Any]]:
        params = {**self._fixed, **params} if self._fixed else params
        args = tuple(params[name] for name in self._order) if self._order is not None else params
        with closing(connection.cursor()) as cursor:
            cursor.execute(self.sql, args)
            return cursor.fetchall()  # type: ignore[no-any-return]

    def convert(self, row: Sequence[Any], start: int, stop: int) -> list[Any]:
        """The values of ``row[start:stop]`` as SQLAlchemy gives them (None stays None)."""
        values = list(row[start:stop])
        for index, process in self._processors:
            if start <= index < stop and (value := values[index - start]) is not None:
                values[index - start] = process(value)
        return values


def binds(prefix: str, count: int) -> list[BindParameter[Any]]:
    """``count`` bind parameters named ``prefix`` and their index (a prepared statement's values)."""
    return [bindparam(f"{prefix}{index}") for index in range(count)]


@contextmanager
def one_read(engine: Engine) -> Iterator[Any]:
    """A pooled DBAPI connection for one read statement, back to the pool after. On PostgreSQL it
    runs in autocommit: the statement is its own transaction, with no BEGIN before it nor ROLLBACK
    after (two round trips fewer). SQLite's connections read in autocommit already."""
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
