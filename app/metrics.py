"""The server's Prometheus metrics: requests by route and outcome, root fields by schema name and
outcome, latency, attempt-budget refusals, PIN lockouts, idempotent replays, the database pool in
use, and the outstanding balance per currency.

Each label value comes from a fixed set the server knows (its routes, its schema's root fields, the
error codes, the currencies it supports), never from what a client wrote. With several workers
(``giftcards serve --workers N``) each writes its values to files of its own in one directory
(prometheus-client's multiprocess mode) and a scrape, whichever worker serves it, adds them up.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import Engine, event

from app.errors import ErrorCode
from app.events import Event
from app.observe import OK, RequestRecord

log = logging.getLogger("app.metrics")

OTHER = "other"  # a path no route serves; a code or field name the server does not know
# Transactions committed together on one card (app.domain.batching; 64 at most).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# Requests answer in milliseconds; the top buckets catch argon2 checks and refusal floors.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A scrape reads the balances from the database at most this often (one aggregate over all cards).
BALANCE_CACHE_SECONDS = 15.0
_CODES = frozenset({OK, *ErrorCode})


class RouteNames:
    """The route a request path belongs to, as the route is written (``/graphiql/static/{name}``),
    or ``other``: exact paths by one lookup, paths with parameters by their pattern."""

    def __init__(self, routes: Iterable[str]) -> None:
        self._exact = {route: route for route in routes if "{" not in route}
        self._patterns = [
            (re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(route)) + "$"), route)
            for route in routes
            if "{" in route
        ]

    def __call__(self, path: str) -> str:
        found = self._exact.get(path)
        if found is not None:
            return found
        return next((route for pattern, route in self._patterns if pattern.match(path)), OTHER)


class Metrics:
    """One process's instruments: :meth:`sink` takes each answered request, :meth:`note` each
    domain event, the engine's pool events move the pool gauge; :meth:`render` is a scrape."""

    def __init__(
        self,
        *,
        routes: Iterable[str],
        root_fields: Iterable[str],
        balances: Callable[[], Mapping[str, int]],
        multiprocess_dir: Path | None = None,
    ) -> None:
        # A *_created series beside each counter would double a scrape for nothing.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self._route = RouteNames(routes)
        self._fields = frozenset(root_fields)
        self._multiprocess_dir = multiprocess_dir
        self.instruments = instruments = Instruments.create()
        refusals = instruments.budget_refusals
        self._events = {
            Event.CODE_BUDGET_REFUSED: refusals.labels(Event.CODE_BUDGET_REFUSED.value),
            Event.CLIENT_SECRET_BUDGET_REFUSED: refusals.labels(Event.CLIENT_SECRET_BUDGET_REFUSED.value),
            Event.PIN_LOCKOUT: instruments.pin_lockouts,
            Event.IDEMPOTENT_REPLAY: instruments.replays,
        }
        self.registry = CollectorRegistry()
        if multiprocess_dir is None:
            for field in dataclasses.fields(instruments):
                self.registry.register(getattr(instruments, field.name))
        else:  # every worker's files, this one's included
            prometheus_multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                self.registry, path=str(multiprocess_dir)
            )
        self.registry.register(BalanceCollector(balances))

    def sink(self, record: RequestRecord) -> None:
        """Count an answered request: a few increments, nothing else (it runs on the event loop)."""
        route, instruments = self._route(record.path), self.instruments
        instruments.requests.labels(route, record.code if record.code in _CODES else OTHER).inc()
        for outcome in record.fields:
            field = outcome.field if outcome.field in self._fields else OTHER
            instruments.root_fields.labels(field, outcome.code if outcome.code in _CODES else OTHER).inc()
        instruments.latency.labels(route, record.operation or "none").observe(record.seconds)

    def note(self, happened: Event) -> None:
        self._events[happened].inc()

    def watch_pool(self, engine: Engine) -> None:
        """Follow ``engine``'s pool: its size now, and each connection taken and given back."""
        in_use = self.instruments.pool_in_use
        self.instruments.pool_size.set(getattr(engine.pool, "size", lambda: 0)())
        event.listen(engine, "checkout", lambda *_: in_use.inc())
        event.listen(engine, "checkin", lambda *_: in_use.dec())

    def render(self) -> bytes:
        """A scrape in Prometheus's text format; blocking (files, the database): run it off the loop."""
        if self._multiprocess_dir is not None:
            forget_dead_workers(self._multiprocess_dir)
        return generate_latest(self.registry)


@dataclasses.dataclass(frozen=True)
class Instruments:
    """The instruments, registered nowhere: a scrape's registry takes them (one process) or reads
    every worker's files (multiprocess mode), so that apps built in one process never clash."""

    requests: Counter
    root_fields: Counter
    latency: Histogram
    budget_refusals: Counter
    pin_lockouts: Counter
    replays: Counter
    batch_sizes: Histogram
    pool_in_use: Gauge
    pool_size: Gauge

    @classmethod
    def create(cls) -> Instruments:
        return cls(
            requests=_counter(
                "giftcards_http_requests",
                "HTTP requests answered, by route and outcome (OK or the first error's code)",
                ("route", "code"),
            ),
            root_fields=_counter(
                "giftcards_graphql_root_fields",
                "Root fields of executed GraphQL operations, by schema field name and outcome",
                ("field", "code"),
            ),
            latency=Histogram(
                "giftcards_http_request_duration_seconds",
                "Time to answer a request, by route and GraphQL operation (query, mutation or none)",
                ["route", "operation"],
                buckets=LATENCY_BUCKETS,
                registry=None,
            ),
            budget_refusals=_counter(
                "giftcards_attempt_budget_refusals",
                "Attempts refused by an attempt budget: code (codes and PINs) or client-secret",
                ("budget",),
            ),
            pin_lockouts=_counter("giftcards_pin_lockouts", "Codes locked by a run of wrong PINs"),
            replays=_counter("giftcards_idempotent_replays", "Stored answers sent again to a retried key"),
            batch_sizes=_batch_sizes(),
            pool_in_use=_live_gauge(
                "giftcards_db_pool_connections_in_use",
                "Database connections the running workers have taken from their pools",
            ),
            pool_size=_live_gauge(
                "giftcards_db_pool_size",
                "Connections the running workers' pools keep open (each may open more for a burst)",
            ),
        )


def _batch_sizes() -> Histogram:
    return Histogram(
        "giftcards_transaction_batch_size",
        "Transactions on one card committed in one database transaction (group commit)",
        buckets=BATCH_BUCKETS,
        registry=None,
    )


def _counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, documentation, labels, registry=None)


def _live_gauge(name: str, documentation: str) -> Gauge:
    """Summed over the running workers; a stopped worker's value leaves the sum."""
    return Gauge(name, documentation, registry=None, multiprocess_mode="livesum")


class BalanceCollector:
    """The outstanding balance per currency, read by the worker serving the scrape (every worker
    reads the same database), at most every BALANCE_CACHE_SECONDS; a failed read leaves it out of
    that scrape rather than failing the scrape."""

    def __init__(
        self,
        read: Callable[[], Mapping[str, int]],
        clock: Callable[[], float] = time.monotonic,
        max_age: float = BALANCE_CACHE_SECONDS,
    ) -> None:
        self._read, self._clock, self._max_age = read, clock, max_age
        self._lock = threading.Lock()  # concurrent scrapes read once
        self._read_at: float | None = None
        self._totals: Mapping[str, int] | None = None

    def collect(self) -> Iterator[Metric]:
        totals = self._current()
        if totals is None:
            return
        family = GaugeMetricFamily(
            "giftcards_outstanding_balance_minor_units",
            "What all cards hold, by currency, in minor units (cents of USD); "
            f"read from the database at most every {self._max_age:g} s",
            labels=["currency"],
        )
        for currency, total in sorted(totals.items()):
            family.add_metric([currency], total)
        yield family

    def _current(self) -> Mapping[str, int] | None:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._max_age:
                self._read_at = now
                try:
                    self._totals = self._read()
                except Exception:  # the other metrics are still worth scraping
                    log.exception("could not read the outstanding balances for the metrics")
                    self._totals = None
            return self._totals


def forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges (pool use) of workers no longer running, so that a worker that died
    without shutting down (and was replaced) stops counting; their counters stay in the totals."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _running(int(pid)):
            prometheus_multiprocess.mark_process_dead(int(pid), str(directory))  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: running
        return True
    return True
