"""Prebuilt reads for the hot path: a SQLAlchemy Core statement compiled once for the engine's
dialect and run on a raw pooled DBAPI connection, since building an ORM query costs far more than
running it."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import Select


class Prepared:
    """A Core statement compiled once and executed on a raw DBAPI cursor. Its rows come back as the
    driver gives them; :meth:`convert` converts the columns a caller reads as SQLAlchemy would
    (SQLite hands back dates and times as text), so values read once per card are converted once."""

    def __init__(self, statement: Select[Any], engine: Engine) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self._order = compiled.positiontup if compiled.positional else None
        processors = (
            column.type.dialect_impl(engine.dialect).result_processor(engine.dialect, None)
            for column in statement.selected_columns
        )
        self._processors = [(index, fn) for index, fn in enumerate(processors) if fn is not None]

    def run(self, connection: Any, **params: Any) -> list[Sequence[Any]]:
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
