"""How ``giftcards serve`` runs uvicorn: how many workers, its options, and an HTTP protocol refusing
an oversized request line or header block as it arrives. uvicorn's httptools protocol buffers them
at any size (h11 caps them but costs 12 to 20% more CPU per lookup), and a middleware sees only
parsed requests.
"""

from __future__ import annotations

import contextlib
import functools
import http
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings
from app.middleware import error_response

# The request target may carry a GET document of up to GIFTCARDS_MAX_BODY_BYTES in its query string
# (the app answers 414 beyond that, in JSON); this much more covers the path. httptools cannot
# parse a target longer than 65,535 bytes (uvicorn answers 400), so none longer is read.
LINE_SLACK_BYTES = 8 * 1024
MAX_TARGET_BYTES = 65_535
# A header block still incomplete is measured by the bytes received, which also hold the method,
# the version and line ends: this much is allowed for them before it is refused unfinished.
_FRAMING_BYTES = 64
# Where prometheus-client's multiprocess mode keeps each worker's metric files (app.metrics).
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def served_workers(settings: Settings, requested: int, sqlite_multiprocess: bool) -> tuple[int, str | None]:
    """The worker processes to run, and why, when that is fewer than ``requested``. On SQLite one
    process is the database's only writer: its writes queue in it (app.writer_queue) and are served
    in turn, where writers in several processes poll the file's lock (a p99 of seconds under load).
    ``sqlite_multiprocess`` runs them all anyway, for lookups spread over the CPUs."""
    if (
        requested == 1
        or sqlite_multiprocess
        or make_url(settings.database_url).get_backend_name() != "sqlite"
    ):
        return requested, None
    return 1, (
        f"serving SQLite with 1 worker, not {requested}: one process writes to the database file, "
        "its writes queue in turn instead of polling the file's lock "
        f"(`giftcards serve --workers {requested} --sqlite-multiprocess` runs {requested} anyway)"
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``giftcards serve`` passes to ``uvicorn.run`` besides the app, address and workers."""
    return {
        # uvicorn builds each connection's protocol by calling this with its config and state.
        "http": functools.partial(
            HeadCappedHttpToolsProtocol,
            max_header_bytes=settings.max_header_bytes,
            max_line_bytes=min(settings.max_body_bytes + LINE_SLACK_BYTES, MAX_TARGET_BYTES),
        ),
        # X-Forwarded-For is believed only from these peers; the address it gives is the one
        # per-address attempt budgets count (a request from anyone else keeps its socket's).
        "proxy_headers": True,
        "forwarded_allow_ips": list(settings.forwarded_allow_ips),
    }


@contextlib.contextmanager
def metrics_directory(environ: MutableMapping[str, str], workers: int) -> Iterator[None]:
    """While serving: the directory where the workers write their metrics, named in ``environ`` for
    them before they start. The operator's PROMETHEUS_MULTIPROC_DIR (made if missing), emptied of
    an earlier run's files; else, for several workers, a private one removed afterwards. One process
    alone keeps its metrics in memory."""
    given = environ.get(METRICS_DIR_VARIABLE)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        yield
    elif workers == 1:
        yield
    else:
        with tempfile.TemporaryDirectory(prefix="giftcards-metrics-") as directory:
            environ[METRICS_DIR_VARIABLE] = directory
            try:
                yield
            finally:
                del environ[METRICS_DIR_VARIABLE]


class HeadCappedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request whose target or header names and values are
    over their cap: counted as the head arrives (so an unfinished one is refused without waiting),
    then measured whole before the app sees it. 414 or 431 in JSON, and the connection is closed."""

    url = b""  # uvicorn's, set at each request's start; none before the first

    def __init__(self, *args: Any, max_header_bytes: int, max_line_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_header_bytes = max_header_bytes
        self._max_line_bytes = max_line_bytes
        self._head_bytes: int | None = 0  # received of the head being read; None during a body
        self._refusal: int | None = None  # the status to answer once a cap is passed

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._refusal is None and self._head_bytes is not None:
            self._refusal = self._over_cap(self._head_bytes - len(self.url) - _FRAMING_BYTES)
        if self._refusal is not None:
            self._refuse(self._refusal)

    def on_headers_complete(self) -> None:
        header_bytes = sum(len(name) + len(value) for name, value in self.headers)
        self._refusal = self._refusal or self._over_cap(header_bytes)
        if self._refusal is not None:
            return  # never handed to the app
        self._head_bytes = None
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is None:
            super().on_message_complete()
            self._head_bytes = 0

    def _over_cap(self, header_bytes: int) -> int | None:
        if len(self.url) > self._max_line_bytes:
            return 414
        if header_bytes > self._max_header_bytes:
            return 431
        return None

    def _refuse(self, status: int) -> None:
        if self.transport.is_closing():
            return
        message = (
            f"The request target exceeds {self._max_line_bytes} bytes."
            if status == 414
            else f"The request headers exceed {self._max_header_bytes} bytes."
        )
        self.logger.warning("Refused with %d: %s", status, message)
        body = error_response(status, message).body
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
