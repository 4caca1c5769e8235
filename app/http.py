"""The ASGI application: ``create_app(settings)`` → Starlette.

Routes: ``/graphql`` (POST JSON; GET for queries; GraphiQL for a browser in development),
``/graphiql/…`` (the IDE's assets, served from an installed package), ``/healthz``, ``/readyz``,
and ``POST /oauth/token`` (client credentials) when the server signs its own tokens.
Authentication happens before GraphQL runs, so a bad token is an HTTP 401, not a GraphQL error.
Pages on the origins in ``GIFTCARDS_CORS_ORIGINS`` may call the API from a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import orjson
from anyio.to_thread import run_sync
from cross_web import HTTPException as StrawberryHTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from app.auth import oauth
from app.auth.throttle import SharedCounters
from app.auth.tokens import INVALID_TOKEN_MESSAGE
from app.config import Settings, load_settings, serving
from app.db import check_schema
from app.domain.audit import AuditTrail
from app.domain.keys import check_pins_verifiable
from app.errors import ConfigurationError, ErrorCode, InvalidTokenError
from app.graphql.context import Context
from app.graphql.limits import DocumentLimits
from app.graphql.schema import build_schema, format_result
from app.services import Services, build_services

log = logging.getLogger("app.http")

# The IDE's files, from the graphene-django-graphiql-static wheel, with their SHA-256: they run on
# this origin, so a changed file is refused rather than served.
GRAPHIQL_ASSETS = {
    "graphiql.min.css": ("text/css", "c6cd4b83f01c5e1ff4975d77bc957184dce6dec0155fbf9cc4d9190eba8a7b9d"),
    "graphiql.min.js": (
        "text/javascript",
        "c564de05b95d184e2c5ba5ceaf2635821f6bf92f2d5777b74d91004ff6b591d1",
    ),
    "react.production.min.js": (
        "text/javascript",
        "229bbf4d0e7488209564152c6723497f1ac3934136ca1684233d2fa88fa4146f",
    ),
    "react-dom.production.min.js": (
        "text/javascript",
        "9db33292007ab6c38527b39d5663e976a305564e19b2a5a8713ea2b2c00f505d",
    ),
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# How often refusal counts whose minute is over are written when no new refusal writes them.
REFUSAL_FLUSH_SECONDS = 10.0
_PAGE_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


class _GraphQLView(GraphQL):  # type: ignore[type-arg]
    def __init__(self, services: Services) -> None:
        super().__init__(
            build_schema(
                introspection=services.settings.introspection_enabled,
                limits=DocumentLimits(
                    max_depth=services.settings.max_query_depth,
                    max_aliases=services.settings.max_aliases,
                    max_fields=services.settings.max_query_fields,
                    max_tokens=services.settings.max_query_tokens,
                ),
            ),
            graphql_ide=None,
            allow_queries_via_get=True,
            subscription_protocols=(),
        )
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Strawberry answers malformed requests with plain text; ours are JSON with a code.
        try:
            response = await self.run(Request(scope, receive))
        except StrawberryHTTPException as exc:
            response = JSONResponse(
                _error_body(exc.reason, ErrorCode.BAD_USER_INPUT), status_code=exc.status_code
            )
        await response(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        state = request.state
        return Context(self.services, state.principal, state.request_id)

    async def process_result(self, request: Any, result: Any) -> Any:
        return format_result(result)

    def decode_json(self, data: str | bytes) -> object:
        decoded = orjson.loads(data)
        if not isinstance(decoded, dict | list):
            # Strawberry expects an object (or a batch); anything else would crash it into a 500.
            raise json.JSONDecodeError("a GraphQL request body is a JSON object", str(data), 0)
        return decoded

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def _error_body(message: str, code: ErrorCode) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code.value}}]}


class GraphQLEndpoint:
    """Request id, body cap, bearer token → principal, then Strawberry (or the IDE page)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.view = _GraphQLView(services)
        self.max_body = services.settings.max_body_bytes
        self.ide_page = (
            (resources.files("app") / "graphiql.html").read_text()
            if services.settings.graphiql_enabled
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request_id = request.headers.get("x-request-id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex
        headers = {"x-request-id": request_id}

        if (
            request.method == "GET"
            and self.ide_page is not None
            and "text/html" in request.headers.get("accept", "")
        ):
            page = HTMLResponse(self.ide_page, headers={**headers, "content-security-policy": _PAGE_POLICY})
            await page(scope, receive, send)
            return

        if len(scope["query_string"]) > self.max_body:
            response = JSONResponse(
                _error_body(f"The query string exceeds {self.max_body} bytes.", ErrorCode.BAD_USER_INPUT),
                status_code=414,
                headers=headers,
            )
            await response(scope, receive, send)
            return

        if request.method == "POST":
            body = await _read_capped(request, self.max_body)
            if body is None:
                response = JSONResponse(
                    _error_body(f"The request body exceeds {self.max_body} bytes.", ErrorCode.BAD_USER_INPUT),
                    status_code=413,
                    headers=headers,
                )
                await response(scope, receive, send)
                return
            receive = _replay(body)

        try:
            authorization = request.headers.get("authorization")
            tokens = self.services.tokens
            principal = (
                await run_sync(tokens.principal_from_header, authorization)
                if tokens.fetches_keys
                else tokens.principal_from_header(authorization)
            )
        except InvalidTokenError:
            response = JSONResponse(
                _error_body(INVALID_TOKEN_MESSAGE, ErrorCode.UNAUTHENTICATED),
                status_code=401,
                headers={**headers, "www-authenticate": 'Bearer error="invalid_token"'},
            )
            await response(scope, receive, send)
            return

        client = scope.get("client")
        request.state.principal = dataclasses.replace(
            principal, address=client[0] if client else None, request_id=request_id
        )
        request.state.request_id = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        await self.view(scope, receive, send_with_id)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class TokenRoute:
    """``/oauth/token``: the capped body and the caller's address, handed to the token endpoint.

    Every method reaches it, so that the endpoint's own 405 answers in the OAuth error shape.
    """

    def __init__(self, token_endpoint: oauth.TokenEndpoint, max_body: int) -> None:
        self.token_endpoint = token_endpoint
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await _read_capped(request, self.max_body) if request.method == "POST" else b""
        reply = await self.token_endpoint.respond(
            oauth.TokenRequest(
                method=request.method,
                content_type=request.headers.get("content-type"),
                authorization=request.headers.get("authorization"),
                body=body,
                address=request.client.host if request.client else None,
            )
        )
        response = JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
        await response(scope, receive, send)


def _token_routes(services: Services) -> list[Route]:
    """The token endpoint when this server signs its own tokens (HS*); none otherwise."""
    token_endpoint = oauth.token_endpoint(
        services.settings, services.policy, services.secret_throttle, services.argon2_gate
    )
    if token_endpoint is None:
        return []
    return [Route(oauth.PATH, TokenRoute(token_endpoint, services.settings.max_body_bytes))]


def create_app(settings: Settings, services: Services | None = None, *, freeze_gc: bool = False) -> Starlette:
    services = services or build_services(settings)
    endpoint = GraphQLEndpoint(services)

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

    assets = load_graphiql_assets() if settings.graphiql_enabled else {}

    async def graphiql_asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return Response(status_code=404)
        return Response(
            assets[name],
            media_type=GRAPHIQL_ASSETS[name][0],
            headers={"cache-control": "public, max-age=86400"},
        )

    async def graphiql_start(_: Request) -> Response:
        if not settings.graphiql_enabled:
            return Response(status_code=404)
        return Response((resources.files("app") / "graphiql.js").read_bytes(), media_type="text/javascript")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        check_schema(services.engine)
        check_pins_verifiable(services.engine, services.pins)
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

    routes = [
        Route("/graphql", endpoint, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/graphiql/start.js", graphiql_start),
        Route("/graphiql/static/{name}", graphiql_asset),
        *_token_routes(services),
    ]
    return Starlette(routes=routes, middleware=cors_middleware(settings), lifespan=lifespan)


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins, outermost, so that every answer carries its headers:
    401, 413 and 429 too, for a page to read why it was refused. Starlette's own error middleware
    sits outside all middleware; a second one inside answers a crash before CORS sees it go by.

    No credentials: callers send bearer tokens, never cookies.
    """
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


def load_graphiql_assets() -> dict[str, bytes]:
    """Read the IDE's files once, refusing any whose content is not the one reviewed."""
    folder = resources.files("graphene_django_graphiql_static") / "static" / "graphene_django_graphiql_static"
    assets = {}
    for name, (_, digest) in GRAPHIQL_ASSETS.items():
        content = (folder / name).read_bytes()
        if hashlib.sha256(content).hexdigest() != digest:
            raise ConfigurationError(
                f"GraphiQL asset {name} does not match its known SHA-256; reinstall "
                "graphene-django-graphiql-static==0.8 or set GIFTCARDS_GRAPHIQL=false"
            )
        assets[name] = content
    return assets


class _DropQueryStrings(logging.Filter):
    """Access-log lines keep the path only: a GET query string can hold a gift card code."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].partition("?")[0], *args[3:])
        return True


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper())
    logging.getLogger("uvicorn.access").addFilter(_DropQueryStrings())


def app_from_environ() -> Starlette:
    """Factory for uvicorn workers: settings from this process's environment."""
    environ: Mapping[str, str] = os.environ
    settings = load_settings(environ)
    configure_logging(settings)
    return create_app(settings, freeze_gc=True)
