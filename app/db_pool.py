"""The pool of a server's database connections: kept, pinged after an idle spell, and a wait for
one bounded and answered UNAVAILABLE."""

from __future__ import annotations

from time import monotonic
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from app.errors import UnavailableError

# A pooled PostgreSQL connection left idle longer than this is pinged (one round trip) before it is
# handed out, so that one the server dropped meanwhile (a restart, an idle timeout) is replaced
# rather than failed on. One in steady use is not: a ping per checkout is a round trip per request.
PING_AFTER_IDLE_SECONDS = 2.0
# The longest a request waits for a pooled connection when every one is in use; then it is answered
# UNAVAILABLE, not INTERNAL: the server is overloaded, not broken.
POOL_WAIT_SECONDS = 30.0
POOL_BUSY = "the server is busy: no database connection came free in time; try again"


class Pool(QueuePool):
    """SQLAlchemy's queue pool, whose wait for a connection past its timeout is UNAVAILABLE."""

    # It logs as SQLAlchemy's own pool does (SQLAlchemy's logger, quiet), not as one of ours.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.QueuePool"

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except PoolTimeout as exc:
            raise UnavailableError(POOL_BUSY) from exc


_IDLE_SINCE = "giftcards.idle_since"  # on a pooled connection's record: when it was handed back


def ping_when_idle(engine: Engine, after_seconds: float) -> None:
    """Ping a pooled connection on checkout when it was idle more than ``after_seconds``; one that
    fails is replaced by a new connection (the pool retries on DisconnectionError)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)  # None: connected just now
        if since is None or monotonic() - since <= after_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("a pooled connection did not answer its ping") from exc
