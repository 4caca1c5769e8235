"""Log lines: one configuration for every process (the server, each worker, the CLI and the Alembic
migrations it runs), JSON or text on standard error, and the one line each answered request leaves
(a sink of app.observe). A line names what happened, never a code, PIN, token or query string."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from app.config import Settings
from app.observe import RequestRecord, Sink

REQUESTS = logging.getLogger("app.requests")
HANDLER_NAME = "giftcards"  # the root handler configure_logging installs (and replaces)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StandardError(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a line is written, as logging's last resort does,
    so that a command run inside a test writes where the test captures."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass  # always sys.stderr


class JsonFormatter(OrjsonFormatter):
    """One JSON object a line: time (UTC), level, logger, message, then the record's extra fields;
    an exception's traceback goes in ``exception``."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            # uvicorn repeats its message with terminal colours in color_message.
            reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName"],
        )

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, extra: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC)
        super().add_fields(log_data, record, extra)


def configure_logging(settings: Settings) -> None:
    """Send every log line of this process (ours, uvicorn's, Alembic's, SQLAlchemy's, warnings) to
    standard error at the settings' level and in their format. Called again (each worker calls it,
    and so may a test), it replaces its own handler and leaves any other alone."""
    handler = _StandardError()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.json_logs else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for previous in [existing for existing in root.handlers if existing.name == HANDLER_NAME]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own configuration, if it made one
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The request line replaces uvicorn's access line (which would carry GET query strings):
    # without a handler uvicorn does not even write it, however it was started.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    # Alembic names each plugin it sets up, at INFO, the first time it is imported: a command that
    # opens the database after its logging is configured would print them before its answer.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.captureWarnings(True)


def json_logging() -> bool:
    """Whether :func:`configure_logging` has made this process's lines JSON."""
    return any(
        handler.name == HANDLER_NAME and isinstance(handler.formatter, JsonFormatter)
        for handler in logging.getLogger().handlers
    )


def request_log(settings: Settings) -> Sink:
    """The sink that logs each answered request as one line at INFO on ``app.requests``."""
    return _log_json if settings.json_logs else _log_text


def _log_json(record: RequestRecord) -> None:
    if not REQUESTS.isEnabledFor(logging.INFO):
        return
    extra: dict[str, Any] = {
        "request_id": record.request_id,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "code": record.code,
        "operation": record.operation,
        "fields": [outcome.field for outcome in record.fields],
    }
    if any(outcome.code != record.code for outcome in record.fields):
        extra["field_codes"] = [outcome.code for outcome in record.fields]
    extra["duration_ms"] = round(record.seconds * 1000, 2)
    extra["subject"], extra["client"] = record.subject, record.client
    REQUESTS.info("request", extra=extra)


def _log_text(record: RequestRecord) -> None:
    if not REQUESTS.isEnabledFor(logging.INFO):
        return
    if any(outcome.code != record.code for outcome in record.fields):
        fields = ",".join(f"{outcome.field}:{outcome.code}" for outcome in record.fields)
    else:
        fields = ",".join(outcome.field for outcome in record.fields)
    REQUESTS.info(
        "%s %s %d %s %.2f ms %s fields=%s request_id=%s subject=%s client=%s",
        record.method,
        record.path,
        record.status,
        record.code,
        record.seconds * 1000,
        record.operation or "-",
        fields or "-",
        record.request_id,
        record.subject or "-",
        record.client or "-",
    )
