"""The stores table: add and list stores, and tell which of a token's stores the server knows.

Stores are added from the command line, by another process than the server's, and never removed:
the set of known ids is cached, and read again when a token names one it lacks (at most once a
second, so tokens naming unknown stores cannot turn every request into a query).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime

from sqlalchemy import Engine, exc, insert, select

from app import models
from app.db import READ_ONLY
from app.entities import Store
from app.errors import ConflictError

_stores = models.Store.__table__  # type: ignore[attr-defined]
_RELOAD_SECONDS = 1.0


class StoreDirectory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")

    def list(self, ids: Iterable[str] | None = None) -> list[Store]:
        """The stores, by id; only those of ``ids`` when given."""
        statement = select(_stores.c.id, _stores.c.name, _stores.c.created_at).order_by(_stores.c.id)
        if ids is not None:
            statement = statement.where(_stores.c.id.in_(list(ids)))
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return [Store(*row) for row in connection.execute(statement)]

    def add(self, store_id: str, name: str | None) -> Store:
        """Add a store (ids checked by the caller); CONFLICT if it exists."""
        row = Store(store_id, name, datetime.now(UTC))
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(_stores).values(**asdict(row)))
        except exc.IntegrityError:
            raise ConflictError(f"store {store_id!r} already exists", field="id") from None
        self._known |= {store_id}
        return row

    def load(self) -> None:
        """Read the stores' ids (at start-up, and again when a token names one not known yet)."""
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            self._known = frozenset(connection.execute(select(_stores.c.id)).scalars())
        self._loaded_at = time.monotonic()

    def unknown(self, ids: Iterable[str]) -> str | None:
        """The first of ``ids`` (sorted) that is not a store, or None when all are."""
        wanted = sorted(ids)
        missing = [store_id for store_id in wanted if store_id not in self._known]
        if missing and time.monotonic() - self._loaded_at >= _RELOAD_SECONDS:
            self.load()
            missing = [store_id for store_id in wanted if store_id not in self._known]
        return missing[0] if missing else None
