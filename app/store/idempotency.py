"""Idempotency keys: read, claim, complete and purge (inside the caller's unit of work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete
from sqlmodel import Session

from app.db import READ_ONLY
from app.models import IdempotencyKey

_keys = IdempotencyKey.__table__  # type: ignore[attr-defined]


def find_key(session: Session, subject: str, key: str) -> IdempotencyKey | None:
    return session.get(IdempotencyKey, (subject, key))


def find_committed_key(engine: Engine, subject: str, key: str) -> IdempotencyKey | None:
    """The key's row as committed, read outside any write transaction (SQLite's write lock)."""
    with engine.connect() as connection:
        connection = connection.execution_options(**{READ_ONLY: True})
        with Session(bind=connection) as session:
            return session.get(IdempotencyKey, (subject, key))


def claim_key(session: Session, claim: IdempotencyKey) -> None:
    """Insert the key row; raises IntegrityError when another request holds the same key."""
    session.add(claim)
    session.flush()


def release_key(session: Session, claim: IdempotencyKey) -> None:
    """Drop a claim this transaction made (a refused request stores nothing under its key)."""
    session.delete(claim)
    session.flush()


def purge_keys(session: Session, older_than: datetime) -> None:
    """Forget every key older than the retention time, whoever sent it."""
    session.execute(delete(_keys).where(_keys.c.created_at < older_than))
