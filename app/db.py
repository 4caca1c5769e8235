"""Engine from settings, the unit of work, and the schema version (Alembic) checks.

SQLite runs in WAL mode with foreign keys on, and every write transaction starts with ``BEGIN
IMMEDIATE`` so that two writers never race on a stale read. Before it, the transaction waits for its
turn in the process's queue of writers to that file (app.writer_queue), so that writers are served
in arrival order rather than poll SQLite's lock; the turn passes on at commit, rollback or close.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Self

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app.config import Settings
from app.db_pool import PING_AFTER_IDLE_SECONDS, POOL_WAIT_SECONDS, Pool, ping_when_idle
from app.db_unreachable import unreachable
from app.errors import ConfigurationError, UnavailableError
from app.reader_threads import MOST_THREADS
from app.writer_queue import WriterQueue, queue_for

# Execution option of a connection that only reads: on SQLite it runs in autocommit mode rather
# than taking the write lock with BEGIN IMMEDIATE (WAL readers never block writers).
READ_ONLY = "giftcards_read_only"
# Execution option of an engine whose statements are traced (app.tracing): the prepared statements
# of a unit of work then run through SQLAlchemy, whose events the tracer hears.
TRACED = "giftcards_traced"
# The longest an SQLite write transaction waits for its turn in this process, and then (another
# process writing) for the file's lock; either way it is then answered UNAVAILABLE (BUSY).
WRITE_WAIT_SECONDS = 30.0
# The longest a PostgreSQL statement waits for a row lock (a card another transaction is changing)
# before it gives up, and its transaction is answered UNAVAILABLE: no request holds a worker forever.
LOCK_WAIT_SECONDS = 30.0
# The most statements a worker runs at once: the threads where its database work runs, reader
# threads (app.reader_threads) for reads and, as many apart, for transactions, and anyio's 40 (the
# other mutations). SQLite's connections are a file handle each, so its pool keeps that many and
# none is ever opened and closed again under load (one worker serves SQLite, every request of the
# server in it). PostgreSQL's are server processes: each worker keeps GIFTCARDS_DB_POOL_SIZE of
# them (24) and opens no more. Kept, not opened for a burst and closed after it: spread over many
# cards, 16 concurrent debits a worker made a pool of 8 and 16 more open and close connections all
# the time (a new server process each), which cost a quarter of the throughput.
WORKER_THREADS = 3 * MOST_THREADS


def create_db_engine(
    settings: Settings,
    *,
    write_wait_seconds: float = WRITE_WAIT_SECONDS,
    ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS,
    lock_wait_seconds: float = LOCK_WAIT_SECONDS,
    pool_wait_seconds: float = POOL_WAIT_SECONDS,
) -> Engine:
    url = make_url(settings.database_url)
    # hide_parameters: bound values (hashes, ciphertext) never reach a log line.
    pool: dict[str, Any] = {"pool_size": settings.db_pool_size, "max_overflow": 0, "hide_parameters": True}
    pool.update(poolclass=Pool, pool_timeout=pool_wait_seconds)
    if url.get_backend_name() == "sqlite":
        pool.update(pool_size=WORKER_THREADS)
        connect_args = {
            "check_same_thread": False,
            "timeout": WRITE_WAIT_SECONDS,
            "factory": _SQLiteConnection,
        }
        engine = create_engine(url, connect_args=connect_args, **pool)
        _configure_sqlite(engine, queue_for(url.database), write_wait_seconds)
        return engine
    if url.get_backend_name() == "postgresql":
        lock_timeout = f"-c lock_timeout={round(lock_wait_seconds * 1000)}"
        engine = create_engine(url, connect_args={"connect_timeout": 5, "options": lock_timeout}, **pool)
        ping_when_idle(engine, ping_after_idle_seconds)
        return engine
    raise ConfigurationError(
        f"GIFTCARDS_DATABASE_URL: unsupported database {url.get_backend_name()!r}; "
        "use sqlite:///FILE or postgresql+psycopg://…"
    )


BEGIN_WRITE = "BEGIN IMMEDIATE"
# A write that waited its longest for its turn, or for another process's lock on the file: the
# server is overloaded, not broken, and the caller may retry (UNAVAILABLE, not INTERNAL).
BUSY = "the database is busy with other writes; try again"


class _SQLiteConnection(sqlite3.Connection):
    """sqlite3's connection, whose write transactions (``BEGIN IMMEDIATE``) take their turn in the
    queue of writers to its file first, and give it back once they have ended."""

    writers: WriterQueue | None = None  # set on connecting, with the longest wait for a turn
    wait_seconds = WRITE_WAIT_SECONDS
    _turn: WriterQueue | None = None

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or _SQLiteCursor)

    def take_turn(self) -> None:
        if self.writers is None or self._turn is not None:
            return
        if not self.writers.take(self.wait_seconds):
            raise UnavailableError(BUSY)
        self._turn = self.writers

    def give_turn_back(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.give_back()

    def commit(self) -> None:
        super().commit()  # a failed commit leaves the transaction open: its rollback ends it
        self.give_turn_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_turn_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_turn_back()

    def __del__(self) -> None:  # dropped unclosed: sqlite3 closes it without calling close()
        self.give_turn_back()


class _SQLiteCursor(sqlite3.Cursor):
    connection: _SQLiteConnection

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        if sql != BEGIN_WRITE:
            return super().execute(sql, parameters)
        self.connection.take_turn()
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            self.connection.give_turn_back()
            if getattr(exc, "sqlite_errorname", None) in ("SQLITE_BUSY", "SQLITE_LOCKED"):  # past its timeout
                raise UnavailableError(BUSY) from exc
            raise
        except BaseException:
            self.connection.give_turn_back()
            raise


def one_statement_reads(engine: Engine) -> Connection:
    """A connection for reads that share no snapshot (each one statement): READ_ONLY, so that on
    SQLite it takes no write lock, and on PostgreSQL in autocommit, so that no BEGIN goes before a
    statement nor ROLLBACK after it (two round trips fewer)."""
    connection = engine.connect().execution_options(**{READ_ONLY: True})
    if engine.dialect.name == "postgresql":
        connection.execution_options(isolation_level="AUTOCOMMIT")  # reset when the pool has it back
    return connection


def _configure_sqlite(engine: Engine, writers: WriterQueue, wait_seconds: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions start.
        dbapi_connection.isolation_level = None
        dbapi_connection.writers, dbapi_connection.wait_seconds = writers, wait_seconds
        busy = f"busy_timeout={int(WRITE_WAIT_SECONDS * 1000)}"
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", busy):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if not connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql(BEGIN_WRITE)


class UnitOfWork:
    """One database transaction, ``with UnitOfWork(engine) as unit: …; unit.commit()``: leaving the
    block without :meth:`commit` rolls it back."""

    def __init__(self, engine: Engine) -> None:
        self.session = Session(engine, expire_on_commit=False)

    def commit(self) -> None:
        self.session.commit()

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, _type: object, error: BaseException | None, _traceback: object) -> None:
        self.session.rollback()  # nothing to undo after a commit
        self.session.close()
        if error is not None:
            raise_if_lock_waited(error)


def raise_if_lock_waited(error: BaseException) -> None:
    """UNAVAILABLE for a row lock waited for past LOCK_WAIT_SECONDS (lock_not_available), raised
    through SQLAlchemy or straight from the driver."""
    if getattr(getattr(error, "orig", error), "sqlstate", None) == "55P03":
        raise UnavailableError(BUSY) from error


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("app") / "migrations"))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with connect(engine) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    connect(engine).close()  # an unreachable database said in one line, before Alembic starts
    command.upgrade(alembic_config(engine), "head")


def connect(engine: Engine) -> Connection:
    """A connection; a database that cannot be reached is a configuration error saying where it was
    looked for and why it failed, in a line (never the URL, which may hold a password)."""
    try:
        return engine.connect()
    except OperationalError as exc:
        raise ConfigurationError(unreachable(engine.url, exc)) from None


def claim_id_node(engine: Engine) -> int:
    """A node number for this process's ids (app.ids): the next of a counter the database keeps,
    modulo NODES, so processes started one after another differ (app.ids says when two may not)."""
    from app.ids import NODES, new_id
    from app.models import IdNode

    table = IdNode.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        claimed = connection.execute(
            insert(table).values(claimed_at=datetime.now(UTC)).returning(table.c.id)
        ).scalar_one()
    node = int(claimed) % NODES
    new_id.bind(node)
    return node


def check_schema(engine: Engine) -> None:
    """Refuse to serve a database whose schema is not the one this code expects."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise ConfigurationError(
            f"database schema is at revision {current}, which this server does not know: "
            "the database was migrated by a newer version; run that version"
        )
    raise ConfigurationError(
        f"database schema is at revision {current or 'empty'}, this server needs {head}: "
        "run `giftcards db upgrade` first"
    )
