"""The ASGI application, ``create_app(settings)`` → Starlette: ``/graphql`` behind the middlewares of
app.middleware, GraphiQL's files (app.graphiql), ``/healthz``, ``/readyz``, and ``/oauth/token`` when
the server signs its own tokens."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from anyio.to_thread import run_sync
from cross_web import HTTPException as StrawberryHTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError

from app.auth import oauth
from app.auth.counters import SharedCounters
from app.config import Settings, load_settings
from app.db import check_schema
from app.domain.audit import AuditTrail
from app.domain.keys import check_pins_verifiable
from app.graphiql import graphiql_routes
from app.graphql.context import Context
from app.graphql.limits import DocumentLimits
from app.graphql.schema import build_schema, format_result
from app.logs import configure_logging, request_log
from app.middleware import (
    BearerTokenMiddleware,
    BodyCapMiddleware,
    GraphiQLPageMiddleware,
    MediaTypeMiddleware,
    QueryStringCapMiddleware,
    RequestIdMiddleware,
    error_response,
    read_capped,
)
from app.negotiation import response_status
from app.observe import ObserverMiddleware, Sink, field_outcomes, request_code
from app.services import Services, build_services
from app.state_file import serving

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from app.tracing import Tracing

log = logging.getLogger("app.http")

# How often refusal counts whose minute is over are written when no new refusal writes them.
REFUSAL_FLUSH_SECONDS = 10.0


class _GraphQLView(GraphQL):
    def __init__(self, services: Services, tracing: Tracing | None = None) -> None:
        settings = services.settings
        limits = DocumentLimits(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_fields=settings.max_query_fields,
            max_tokens=settings.max_query_tokens,
        )
        schema = build_schema(
            introspection=settings.introspection_enabled,
            limits=limits,
            extra_extensions=tracing.schema_extensions() if tracing else (),
        )
        super().__init__(schema, graphql_ide=None, allow_queries_via_get=True, subscription_protocols=())
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Strawberry answers malformed requests with plain text; ours are JSON with a code.
        try:
            response = await self.run(Request(scope, receive))
        except StrawberryHTTPException as exc:
            response = _refusal(exc)
        await response(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        return Context(
            self.services, request.state.principal, request.state.request_id, request.scope["state"]
        )

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        # The sub-response carries the answer's media type (MediaTypeMiddleware) to create_response.
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = request.state.media_type
        return sub_response

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        # Strawberry checks the shape of every parameter but this one.
        if isinstance(data, GraphQLRequestData) and not isinstance(data.operation_name, str | None):
            raise StrawberryHTTPException(
                400, "The GraphQL operation's `operationName` must be a string or null, if provided."
            )
        return data

    async def process_result(self, request: Any, result: Any) -> Any:
        body = format_result(result)
        state = request.scope["state"]
        operation, selected = state.pop("graphql_root", (None, ()))
        fields = field_outcomes(selected, result.errors)  # none when the request was refused
        state["graphql_outcome"] = (operation if fields else None, fields, request_code(result.errors))
        return body

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if isinstance(response_data, dict) and sub_response.media_type:  # batches are refused before
            response.status_code = response_status(response_data, sub_response.media_type)
        return response

    def decode_json(self, data: str | bytes) -> object:
        decoded = orjson.loads(data)
        if not isinstance(decoded, dict | list):
            # Strawberry expects an object (or a batch); anything else would crash it into a 500.
            raise json.JSONDecodeError("a GraphQL request body is a JSON object", str(data), 0)
        return decoded

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def _refusal(exc: StrawberryHTTPException) -> Response:
    """Strawberry's refusal of a malformed request, in the API's error shape."""
    if isinstance(exc.__cause__, InvalidOperationTypeError):  # a mutation over GET
        return error_response(405, exc.reason, headers={"allow": "POST"})
    return error_response(exc.status_code, exc.reason)


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
    span_exporter: SpanExporter | None = None,
) -> Starlette:
    """The application; ``sinks`` each receive the record of every answered request (app.observe).
    Traced when the settings name an OTLP endpoint, or into ``span_exporter`` (tests)."""
    services = services or build_services(settings)
    tracing: Tracing | None = None
    if settings.otlp_traces_endpoint is not None or span_exporter is not None:
        from app.tracing import start_tracing  # OpenTelemetry is imported only when traces are asked for

        tracing = start_tracing(settings, services.engine, span_exporter)
    graphql = Route(
        "/graphql",
        _GraphQLView(services, tracing),
        methods=["GET", "POST"],
        middleware=graphql_middleware(services),
    )
    routes = [graphql, *_probe_routes(services), *graphiql_routes(settings), *_token_routes(services)]
    lifespan = functools.partial(_lifespan, settings, services, freeze_gc)
    middleware = [
        Middleware(ObserverMiddleware, sinks=sinks),
        Middleware(RequestIdMiddleware),
        *cors_middleware(settings),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
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
    """Check the schema and the PIN keys before serving; write the refusal counts while serving."""
    check_schema(services.engine)
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
    settings = load_settings(os.environ)
    configure_logging(settings)
    return create_app(settings, freeze_gc=True, sinks=[request_log(settings)])
