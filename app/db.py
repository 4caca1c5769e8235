"""Engine from settings, the unit of work, and the schema version (Alembic) checks.

SQLite runs in WAL mode with foreign keys on, and every write transaction starts with ``BEGIN
IMMEDIATE`` so that two writers never race on a stale read.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.config import Settings
from app.errors import ConfigurationError

# Execution option of a connection that only reads: on SQLite it runs in autocommit mode rather
# than taking the write lock with BEGIN IMMEDIATE (WAL readers never block writers).
READ_ONLY = "giftcards_read_only"


def create_db_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    # hide_parameters: bound values (hashes, ciphertext) never reach a log line.
    pool: dict[str, Any] = {"pool_size": 8, "max_overflow": 16, "hide_parameters": True}
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        _configure_sqlite(engine)
        return engine
    if url.get_backend_name() == "postgresql":
        return create_engine(url, connect_args={"connect_timeout": 5}, pool_pre_ping=True, **pool)
    raise ConfigurationError(
        f"GIFTCARDS_DATABASE_URL: unsupported database {url.get_backend_name()!r}; "
        "use sqlite:///FILE or postgresql+psycopg://…"
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions start.
        dbapi_connection.isolation_level = None
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if not connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class UnitOfWork:
    """One database transaction, ``with UnitOfWork(engine) as unit: …; unit.commit()``: leaving the
    block without :meth:`commit` rolls it back."""

    def __init__(self, engine: Engine) -> None:
        self.session = Session(engine, expire_on_commit=False)

    def commit(self) -> None:
        self.session.commit()

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.rollback()  # nothing to undo after a commit
        self.session.close()


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
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")


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
