"""SQLite's one writer per file in the process: every write transaction (a unit of work, an
``engine.begin()``, a connection that starts writing) takes its turn before ``BEGIN IMMEDIATE``,
in arrival order, and gives it back at commit, rollback or close; read-only connections never
queue; a writer that waits too long gets what SQLite's busy timeout gives."""

from __future__ import annotations

import gc
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from app import db
from app.config import Settings
from app.errors import ErrorCode, UnavailableError
from app.writer_queue import WriterQueue, queue_for
from tests.test_writer_queue import THREADS, eventually

WRITES_EACH = 5


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "writers.db"


def sqlite_engine(path: Path, **options: Any) -> Engine:
    engine = db.create_db_engine(Settings(database_url=f"sqlite:///{path}"), **options)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS turns (id INTEGER PRIMARY KEY, n INT)")
    return engine


def never_poll(engine: Engine) -> None:
    """SQLite's busy timeout off: a writer meeting the file's lock fails at once instead of polling."""

    @event.listens_for(engine, "connect")
    def _no_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")


@pytest.fixture
def engine(path: Path) -> Iterator[Engine]:
    engine = sqlite_engine(path)
    never_poll(engine)
    engine.dispose()  # connections made from here on poll no lock
    yield engine
    engine.dispose()


def written(engine: Engine) -> list[int]:
    with engine.connect().execution_options(**{db.READ_ONLY: True}) as connection:
        return [row.n for row in connection.execute(text("SELECT n FROM turns ORDER BY id"))]


def with_unit_of_work(engine: Engine, n: int) -> None:
    with db.UnitOfWork(engine) as unit:
        unit.session.execute(text("INSERT INTO turns (n) VALUES (:n)"), {"n": n})
        unit.commit()


def with_begin(engine: Engine, n: int) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO turns (n) VALUES (:n)"), {"n": n})


def with_connection(engine: Engine, n: int) -> None:
    with engine.connect() as connection:
        connection.execute(text("INSERT INTO turns (n) VALUES (:n)"), {"n": n})
        connection.commit()


WRITE_PATHS = [with_unit_of_work, with_begin, with_connection]


@pytest.mark.parametrize("write", WRITE_PATHS)
def test_concurrent_writers_all_succeed_without_polling_the_lock(engine, write):
    # given SQLite's busy timeout off, so that a second writer at the file's lock would fail
    # when 12 threads write 5 rows each at once
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(WRITES_EACH):
                write(engine, n * WRITES_EACH + i)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then every write went through, one after another, and each thread's in its own order
    assert failures == []
    rows = written(engine)
    assert sorted(rows) == list(range(THREADS * WRITES_EACH))
    for n in range(THREADS):
        mine = [row for row in rows if row // WRITES_EACH == n]
        assert mine == sorted(mine)
    assert queue_for(str(engine.url.database)).waiting() == 0


@pytest.mark.parametrize("write", WRITE_PATHS)
def test_writers_are_served_in_the_order_they_arrived(engine, write):
    queue = queue_for(str(engine.url.database))
    # given a writer in the middle of its transaction
    holder = engine.connect()
    holder.execute(text("INSERT INTO turns (n) VALUES (-1)"))
    # when 12 threads start writing one after another, each once the one before queues
    threads = []
    for n in range(THREADS):
        threads.append(threading.Thread(target=write, args=(engine, n), daemon=True))
        threads[-1].start()
        eventually(lambda: queue.waiting() == len(threads))
    assert written(engine) == []  # none wrote meanwhile, and reads did not wait
    holder.commit()
    holder.close()
    for thread in threads:
        thread.join(timeout=30)
    # then they wrote in the order they arrived
    assert written(engine) == [-1, *range(THREADS)]
    assert queue.waiting() == 0


def test_reads_never_take_a_turn(engine):
    queue = queue_for(str(engine.url.database))
    with engine.begin() as holder:  # the turn held
        holder.execute(text("INSERT INTO turns (n) VALUES (1)"))
        assert written(engine) == []  # answered from the snapshot, without queueing
        assert queue.waiting() == 0


def test_a_writer_waiting_too_long_is_told_the_database_is_busy(path):
    # given SQLite's own refusal: a writer at a lock another connection (a process) holds
    engine = sqlite_engine(path, write_wait_seconds=0.01)
    never_poll(engine)
    engine.dispose()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(UnavailableError) as busy:
        with_begin(engine, 1)
    other.rollback()
    other.close()
    # when a writer waits for a turn held in the process for longer than it may
    holder = engine.connect()
    holder.execute(text("INSERT INTO turns (n) VALUES (1)"))
    try:
        with pytest.raises(UnavailableError) as queued:
            with_unit_of_work(engine, 2)
    finally:
        holder.rollback()
        holder.close()
    # then either way it is told the database is busy (UNAVAILABLE: retry), and nothing is left queued
    assert queued.value.message == busy.value.message == db.BUSY
    assert queued.value.code is busy.value.code is ErrorCode.UNAVAILABLE
    assert isinstance(busy.value.__cause__, sqlite3.OperationalError)  # SQLite's "database is locked"
    assert queue_for(str(path)).waiting() == 0
    with_begin(engine, 3)
    assert written(engine) == [3]
    engine.dispose()


def give_back_by_rollback(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("INSERT INTO turns (n) VALUES (1)"))
        connection.rollback()


def give_back_by_close(engine: Engine) -> None:
    connection = engine.connect()
    connection.execute(text("INSERT INTO turns (n) VALUES (1)"))
    connection.close()  # never committed: the pool rolls it back


def give_back_by_a_failed_statement(engine: Engine) -> None:
    with pytest.raises(OperationalError), db.UnitOfWork(engine) as unit:
        unit.session.execute(text("INSERT INTO no_such_table VALUES (1)"))


def give_back_when_begin_fails(engine: Engine) -> None:
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the file's lock
    try:
        with pytest.raises(UnavailableError):
            with_begin(engine, 1)
    finally:
        other.rollback()
        other.close()


@pytest.mark.parametrize(
    "end",
    [give_back_by_rollback, give_back_by_close, give_back_by_a_failed_statement, give_back_when_begin_fails],
)
def test_a_write_that_does_not_commit_gives_its_turn_back(engine, end: Callable[[Engine], None]):
    end(engine)
    queue: WriterQueue = queue_for(str(engine.url.database))
    assert queue.take(wait_seconds=0)  # free
    queue.give_back()
    with_begin(engine, 2)
    assert written(engine) == [2]


def test_engines_of_one_file_share_its_queue(path, engine):
    # given a second engine on the same file, its writer in a transaction
    second = sqlite_engine(path)
    holder = second.connect()
    holder.execute(text("INSERT INTO turns (n) VALUES (1)"))
    # when the first engine writes, it queues behind it rather than meet the lock (no polling here)
    thread = threading.Thread(target=with_begin, args=(engine, 2), daemon=True)
    thread.start()
    eventually(lambda: queue_for(str(path)).waiting() == 1)
    holder.commit()
    holder.close()
    thread.join(timeout=30)
    assert written(engine) == [1, 2]
    second.dispose()


def test_a_writer_dropped_unclosed_gives_its_turn_back(engine):
    # given a connection taken out of the pool, writing, then dropped without commit or close
    raw = engine.raw_connection()
    raw.detach()  # no pool to roll it back on its way out
    writer = raw.dbapi_connection
    writer.cursor().execute("BEGIN IMMEDIATE")
    queue = queue_for(str(engine.url.database))
    assert not queue.take(wait_seconds=0)
    del raw, writer
    gc.collect()
    # then its turn is free for the next writer
    with_begin(engine, 1)
    assert written(engine) == [1]
