"""Idempotency keys: find, claim, seal (and purge), release (inside the caller's unit of work)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Delete, Engine, and_, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from app.db import one_statement_reads
from app.models import IdempotencyKey

_keys = IdempotencyKey.__table__  # type: ignore[attr-defined]
KeyIdent = tuple[str, str, str]  # the primary key: the caller's stores, the token subject, the key


def _is(ident: KeyIdent) -> Any:
    store_key, subject, key = ident
    return and_(_keys.c.store_key == store_key, _keys.c.subject == subject, _keys.c.key == key)


def find_key(session: Session, ident: KeyIdent) -> IdempotencyKey | None:
    return session.get(IdempotencyKey, ident)


class KeyStore:
    """Reads of committed keys on one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find_committed(self, ident: KeyIdent) -> IdempotencyKey | None:
        """The key's row as committed, read outside any write transaction (SQLite's write lock)."""
        with (
            one_statement_reads(self._engine) as connection,
            Session(bind=connection) as session,
        ):
            return session.get(IdempotencyKey, ident)


def claim_key(session: Session, claim: IdempotencyKey) -> bool:
    """Insert the key row unless the key is taken; whether this transaction claimed it. A key held
    by another open transaction makes this wait for its end (PostgreSQL's unique index; SQLite has
    one writer at a time): taken if it committed, claimed if it rolled back."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(_keys)
        .values(**claim.model_dump())
        .on_conflict_do_nothing(index_elements=[_keys.c.store_key, _keys.c.subject, _keys.c.key])
        .returning(_keys.c.key)
    )
    return session.execute(statement).first() is not None


def seal_key(
    session: Session, ident: KeyIdent, key_id: str, response: bytes, older_than: datetime | None = None
) -> None:
    """Store the sealed answer under a key this transaction claimed; with ``older_than``, also
    forget every key created before it (whoever sent it), in the same statement on PostgreSQL."""
    sealed = update(_keys).where(_is(ident)).values(key_id=key_id, response=response)
    connection = session.connection()
    if older_than is None:
        connection.execute(sealed)
    elif connection.dialect.name == "postgresql":
        # The purge cannot touch the sealed row: it was claimed now, in this transaction.
        connection.execute(_purge(older_than).add_cte(sealed.cte("sealed")))
    else:
        connection.execute(sealed)
        connection.execute(_purge(older_than))


def release_key(session: Session, ident: KeyIdent) -> None:
    """Drop a claim this transaction made (a refused request stores nothing under its key)."""
    session.execute(delete(_keys).where(_is(ident)))


def _purge(older_than: datetime) -> Delete:
    """Forget every key older than the retention time, whoever sent it."""
    return delete(_keys).where(_keys.c.created_at < older_than)
