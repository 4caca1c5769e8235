"""The engines' pools. PostgreSQL's pooled connections are pinged before use only after being idle a
while: a connection in steady use costs no extra round trip, and one the server dropped while it sat
idle is replaced rather than failed on. SQLite's pool keeps a connection per worker thread, so none
is opened again under load."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from app import db
from app.config import Settings
from app.db_pool import POOL_BUSY
from app.errors import UnavailableError


def _engine(postgres_url: str, ping_after: float) -> Engine:
    engine = db.create_db_engine(Settings(database_url=postgres_url), ping_after_idle_seconds=ping_after)
    engine.pool.dispose()
    return engine


def _pooled_backend(engine: Engine) -> int:
    """The server process of the pool's one idle connection (used once, handed back)."""
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(postgres_url: str, pid: int) -> None:
    admin = db.create_db_engine(Settings(database_url=postgres_url))
    try:
        with admin.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
            connection.commit()
    finally:
        admin.dispose()


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    pinged: list[object] = []
    real = engine.dialect.do_ping

    def ping(dbapi_connection: Any) -> bool:
        pinged.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    return pinged


def test_a_connection_dropped_while_idle_is_pinged_and_replaced(postgres_url, monkeypatch):
    engine = _engine(postgres_url, ping_after=0.0)
    try:
        dropped = _pooled_backend(engine)
        _terminate(postgres_url, dropped)
        pinged = _pings(engine, monkeypatch)

        assert _pooled_backend(engine) != dropped  # answered, on a new connection
        assert len(pinged) == 1
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(postgres_url, monkeypatch):
    engine = _engine(postgres_url, ping_after=3600.0)
    try:
        first = _pooled_backend(engine)
        pinged = _pings(engine, monkeypatch)
        assert _pooled_backend(engine) == first  # the same connection, handed out with no ping
        assert pinged == []
        # Not pinged, a connection the server dropped fails the statement that finds it dropped;
        # the pool then replaces it.
        _terminate(postgres_url, first)
        with pytest.raises(OperationalError):
            _pooled_backend(engine)
        assert _pooled_backend(engine) != first
    finally:
        engine.dispose()


def test_sqlite_keeps_a_connection_for_every_worker_thread(tmp_path):
    engine = db.create_db_engine(Settings(database_url=f"sqlite:///{tmp_path / 'pool.db'}"))
    opened: list[object] = []
    event.listen(engine, "connect", lambda dbapi_connection, _record: opened.append(dbapi_connection))
    try:
        for _ in range(3):  # every thread busy at once, three times over
            busy = [engine.connect() for _ in range(db.WORKER_THREADS)]
            for connection in busy:
                connection.exec_driver_sql("SELECT 1")
                connection.close()
        assert len(opened) == db.WORKER_THREADS  # opened once each, then kept
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_keeps_the_connections_of_a_burst(postgres_url):
    engine = db.create_db_engine(Settings(database_url=postgres_url, db_pool_size=12))
    opened: list[object] = []
    event.listen(engine, "connect", lambda dbapi_connection, _record: opened.append(dbapi_connection))
    try:
        for _ in range(3):  # a burst using every connection, three times over
            busy = [engine.connect() for _ in range(12)]
            for connection in busy:
                connection.exec_driver_sql("SELECT 1")
            assert engine.pool.overflow() == 0  # type: ignore[attr-defined]  # none past its size
            for connection in busy:
                connection.close()
        assert len(opened) == 12  # opened once each, then kept: no server process per burst
    finally:
        engine.dispose()


def test_a_row_lock_waited_for_too_long_is_unavailable_and_frees_the_worker(postgres_url):
    engine = db.create_db_engine(Settings(database_url=postgres_url), lock_wait_seconds=0.2)
    holder = engine.connect()
    try:
        holder.execute(text("CREATE TABLE IF NOT EXISTS lock_probe (id INTEGER PRIMARY KEY)"))
        holder.execute(text("INSERT INTO lock_probe VALUES (1) ON CONFLICT DO NOTHING"))
        holder.commit()
        holder.execute(text("SELECT id FROM lock_probe WHERE id = 1 FOR UPDATE"))  # held, uncommitted

        with pytest.raises(UnavailableError) as busy, db.UnitOfWork(engine) as unit:
            unit.session.execute(text("UPDATE lock_probe SET id = 1 WHERE id = 1"))

        assert busy.value.message == db.BUSY
        assert getattr(busy.value.__cause__, "orig", None).sqlstate == "55P03"  # type: ignore[union-attr]
    finally:
        holder.rollback()
        holder.execute(text("DROP TABLE lock_probe"))
        holder.commit()
        holder.close()
        engine.dispose()


@pytest.mark.postgres
def test_a_wait_for_a_pooled_connection_past_its_bound_is_unavailable(postgres_url):
    engine = db.create_db_engine(Settings(database_url=postgres_url, db_pool_size=1), pool_wait_seconds=0.2)
    held = engine.connect()
    try:
        with pytest.raises(UnavailableError) as raised:  # not the pool's own error: INTERNAL to a caller
            engine.connect()
        assert raised.value.message == POOL_BUSY
        held.close()
        with engine.connect() as again:  # and served again once one is free
            assert again.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
