"""The ASGI application, ``create_app(settings)`` → Starlette: ``/graphql`` behind the middlewares of
app.middleware, certificates (app.certificate_route), GraphiQL's files (app.graphiql), ``/healthz``,
``/readyz``, ``/metrics`` (app.metrics_route), and ``/oauth/token`` when the server signs its own
tokens."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from anyio.to_thread import run_sync
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.auth import oauth
from app.auth.counters import SharedCounters
from app.certificate_route import certificate_route
from app.config import Settings, load_settings
from app.cpu_pinning import SLOTS_VARIABLE, pin_worker
from app.db import check_schema, claim_id_node
from app.domain.audit import AuditTrail
from app.domain.keys import check_pins_verifiable
from app.graphiql import graphiql_routes
from app.graphql_view import GraphQLView
from app.logs import configure_logging, request_log
from app.metrics_route import metrics_route
from app.middleware import (
    BearerTokenMiddleware,
    BodyCapMiddleware,
    GraphiQLPageMiddleware,
    MediaTypeMiddleware,
    QueryStringCapMiddleware,
    RequestIdMiddleware,
    read_capped,
)
from app.observe import ObserverMiddleware, Sink
from app.services import Services, build_services
from app.state_file import serving

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from app.tracing import Tracing

log = logging.getLogger("app.http")

# How often refusal counts whose minute is over are written when no new refusal writes them.
REFUSAL_FLUSH_SECONDS = 10.0


def graphql_middleware(services: Services) -> list[Middleware]:
    """What ``/graphql`` does before Strawberry runs, outermost first (see app.middleware)."""
    settings = services.settings
    ide_page = [Middleware(GraphiQLPageMiddleware)] if settings.graphiql_enabled else []
    return [
        *ide_page,
        Middleware(MediaTypeMiddleware),
        Middleware(QueryStringCapMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(BodyCapMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(BearerTokenMiddleware, tokens=services.tokens),
    ]


@dataclasses.dataclass
class TokenRoute:
    """``/oauth/token``: the capped body and the caller's address, handed to the token endpoint.
    Every method reaches it, so that the endpoint's own 405 answers in the OAuth error shape."""

    token_endpoint: oauth.TokenEndpoint
    max_body: int

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        reply = await self.token_endpoint.respond(
            oauth.TokenRequest(
                method=request.method,
                content_type=request.headers.get("content-type"),
                authorization=request.headers.get("authorization"),
                body=await read_capped(request, self.max_body) if request.method == "POST" else b"",
                address=request.client.host if request.client else None,
            )
        )
        await JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)(scope, receive, send)


def _token_routes(services: Services) -> list[Route]:
    """The token endpoint when this server signs its own tokens (HS*); none otherwise."""
    token_endpoint = oauth.token_endpoint(
        services.settings, services.policy, services.secret_throttle, services.argon2_gate
    )
    if token_endpoint is None:
        return []
    return [Route(oauth.PATH, TokenRoute(token_endpoint, services.settings.max_body_bytes))]


def create_app(
    settings: Settings,
    services: Services | None = None,
    *,
    freeze_gc: bool = False,
    sinks: Sequence[Sink] = (),
    metrics_dir: Path | None = None,
    span_exporter: SpanExporter | None = None,
) -> Starlette:
    """The application; ``sinks`` each receive the record of every answered request (app.observe),
    as the metrics do (``metrics_dir``: the workers' shared one in multiprocess mode, app.metrics).
    Traced when the settings name an OTLP endpoint, or into ``span_exporter`` (tests)."""
    services = services or build_services(settings)
    tracing: Tracing | None = None
    if settings.otlp_traces_endpoint is not None or span_exporter is not None:
        from app.tracing import start_tracing  # OpenTelemetry is imported only when traces are asked for

        tracing = start_tracing(settings, services.engine, span_exporter)
    view = GraphQLView(services, tracing)
    graphql = Route("/graphql", view, methods=["GET", "POST"], middleware=graphql_middleware(services))
    routes = [
        graphql,
        certificate_route(services),
        *_probe_routes(services),
        *graphiql_routes(settings),
        *_token_routes(services),
    ]
    scrape, metrics_sink = metrics_route(services, routes, view.root_fields, metrics_dir)
    lifespan = functools.partial(_lifespan, settings, services, freeze_gc)
    middleware = [
        Middleware(ObserverMiddleware, sinks=[*sinks, metrics_sink]),
        Middleware(RequestIdMiddleware),
        *cors_middleware(settings),
    ]
    app = Starlette(routes=[*routes, scrape], middleware=middleware, lifespan=lifespan)
    return tracing.instrument(app) if tracing else app


def _probe_routes(services: Services) -> list[Route]:
    """``/healthz``: the process answers; ``/readyz``: the database, and the shared counters if any."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            await run_sync(services.card_store.ping)
        except Exception:  # the reason goes to the log, not to the prober
            log.exception("readiness check failed")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        counters = services.counters
        if not isinstance(counters, SharedCounters):
            return JSONResponse({"status": "ready", "database": "ok"})
        if await run_sync(counters.check):
            return JSONResponse({"status": "ready", "database": "ok", "redis": "ok", "budgets": "shared"})
        # Still serving: budgets fall back to this process's memory, so taking the server out of
        # rotation would only turn an outage of the counters into an outage of sales.
        return JSONResponse(
            {"status": "degraded", "database": "ok", "redis": "unreachable", "budgets": "per process"}
        )

    return [Route("/healthz", healthz), Route("/readyz", readyz)]


@asynccontextmanager
async def _lifespan(
    settings: Settings, services: Services, freeze_gc: bool, _: Starlette
) -> AsyncIterator[None]:
    """Check the schema and the PIN keys before serving, claim this process's id node and read the
    stores; write the refusal counts while serving."""
    check_schema(services.engine)
    claim_id_node(services.engine)
    services.stores.load()
    check_pins_verifiable(services.key_rows, services.pins)
    if freeze_gc:
        # Start-up objects live forever; keep the collector from scanning them again and again.
        gc.collect()
        gc.freeze()
    with contextlib.ExitStack() as stack:
        if not settings.is_production:  # its keys may come from the state file
            stack.enter_context(serving(settings.state_dir))
        async with _refusal_counts(services.audit):
            yield
    services.engine.dispose()


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins, outermost, so that refusals (401, 413, 429) carry its headers
    too. Starlette's own error middleware sits outside all middleware; a second one inside answers a
    crash before CORS sees it go by. No credentials: callers send bearer tokens, never cookies."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=("GET", "POST"),
            allow_headers=("Authorization", "Content-Type", "X-Request-ID"),
            expose_headers=("Retry-After", "WWW-Authenticate", "X-Request-ID"),
            allow_credentials=False,
        ),
        Middleware(ServerErrorMiddleware),
    ]


@asynccontextmanager
async def _refusal_counts(audit: AuditTrail) -> AsyncIterator[None]:
    """While serving, write the refusal counts of each minute once it is over; on the way out,
    write every count still held (see app.domain.refusals for what a crash loses)."""

    async def flush(everything: bool) -> None:
        try:
            await run_sync(lambda: audit.flush_refusals(everything=everything))
        except Exception:  # the counts stay held for the next try
            log.exception("could not write refusal counts to the audit trail")

    async def every_few_seconds() -> None:
        while True:
            await asyncio.sleep(REFUSAL_FLUSH_SECONDS)
            await flush(everything=False)

    task = asyncio.create_task(every_few_seconds())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await flush(everything=True)


def app_from_environ() -> Starlette:
    """Factory for uvicorn workers: settings from this process's environment."""
    cpu = pin_worker(os.environ)  # first: what the settings count as this process's CPUs follows it
    settings = load_settings(os.environ)
    configure_logging(settings)
    if cpu is not None:
        log.info("worker %d pinned to CPU %d", os.getpid(), cpu)
    elif SLOTS_VARIABLE in os.environ:
        log.warning("worker %d not pinned to a CPU: every CPU has a worker already", os.getpid())
    # Set by `giftcards serve` for its workers (prometheus-client reads it when first imported).
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return create_app(
        settings,
        freeze_gc=True,
        sinks=[request_log(settings)],
        metrics_dir=Path(metrics_dir) if metrics_dir else None,
    )
