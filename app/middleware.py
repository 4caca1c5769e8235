"""The HTTP concerns around ``/graphql``, each a small pure ASGI middleware (in the order of
app.http.graphql_middleware). Refusals are JSON with an error code; what the view needs of the
request (its id, the answer's media type and the caller's principal) is left in ``scope["state"]``."""

from __future__ import annotations

import dataclasses
import re
import uuid
from importlib import resources

from anyio.to_thread import run_sync
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.tokens import INVALID_TOKEN_MESSAGE, TokenVerifier
from app.errors import ErrorCode, InvalidTokenError
from app.negotiation import GRAPHQL_RESPONSE, JSON, choose_media_type

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PAGE_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def error_response(
    status: int,
    message: str,
    code: ErrorCode = ErrorCode.BAD_USER_INPUT,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A refusal in the API's error shape, as GraphQL errors are written."""
    body = {"errors": [{"message": message, "extensions": {"code": code.value}}]}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclasses.dataclass
class RequestIdMiddleware:
    """The caller's ``X-Request-ID`` when it is well formed, else a new one: kept in
    ``scope["state"]["request_id"]`` and sent back on every answer of every route, refusals included."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


@dataclasses.dataclass
class GraphiQLPageMiddleware:
    """A browser's GET (``Accept: text/html``) gets the IDE page instead of GraphQL."""

    app: ASGIApp
    page: str = dataclasses.field(default_factory=(resources.files("app") / "graphiql.html").read_text)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if scope["method"] == "GET" and "text/html" in Headers(scope=scope).get("accept", ""):
            app = HTMLResponse(self.page, headers={"content-security-policy": PAGE_POLICY})
        await app(scope, receive, send)


@dataclasses.dataclass
class MediaTypeMiddleware:
    """The answer's media type, chosen from ``Accept`` (app.negotiation), kept in
    ``scope["state"]["media_type"]``; an ``Accept`` that takes neither GraphQL type is a 406. Every JSON
    answer from inside, refusals included, goes out under the chosen type, in UTF-8."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        media_type = choose_media_type(Headers(scope=scope).get("accept"))
        if media_type is None:
            message = f"The Accept header takes neither {GRAPHQL_RESPONSE} nor {JSON}."
            await error_response(406, message)(scope, receive, _typed(send, JSON))
            return
        scope["state"]["media_type"] = media_type
        await self.app(scope, receive, _typed(send, media_type))


def _typed(send: Send, media_type: str) -> Send:
    """``send``, with a JSON answer's content type replaced by ``media_type`` and its charset."""
    content_type = f"{media_type}; charset=utf-8".encode()

    async def send_typed(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                (name, content_type if name == b"content-type" and value == JSON.encode() else value)
                for name, value in message["headers"]
            ]
        await send(message)

    return send_typed


@dataclasses.dataclass
class QueryStringCapMiddleware:
    """A query string (a GET's document) longer than ``max_bytes`` is a 414."""

    app: ASGIApp
    max_bytes: int

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if len(scope["query_string"]) > self.max_bytes:
            app = error_response(414, f"The query string exceeds {self.max_bytes} bytes.")
        await app(scope, receive, send)


@dataclasses.dataclass
class BodyCapMiddleware:
    """A POST body over ``max_bytes`` is a 413; one within is read whole and replayed inside."""

    app: ASGIApp
    max_bytes: int

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if scope["method"] == "POST":
            body = await read_capped(Request(scope, receive), self.max_bytes)
            if body is None:
                app = error_response(413, f"The request body exceeds {self.max_bytes} bytes.")
            else:
                receive = _replay(body)
        await app(scope, receive, send)


@dataclasses.dataclass
class BearerTokenMiddleware:
    """The ``Authorization`` header → ``scope["state"]["principal"]``, with the caller's address
    and the request id (set by RequestIdMiddleware, outside this one); a bad token is a 401."""

    app: ASGIApp
    tokens: TokenVerifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header, verify = Headers(scope=scope).get("authorization"), self.tokens.principal_from_header
        try:
            principal = await run_sync(verify, header) if self.tokens.fetches_keys else verify(header)
        except InvalidTokenError:
            headers = {"www-authenticate": 'Bearer error="invalid_token"'}
            response = error_response(401, INVALID_TOKEN_MESSAGE, ErrorCode.UNAUTHENTICATED, headers)
            await response(scope, receive, send)
            return
        state, client = scope["state"], scope.get("client")
        state["principal"] = dataclasses.replace(
            principal, address=client[0] if client else None, request_id=state["request_id"]
        )
        await self.app(scope, receive, send)


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it is declared or found to be over ``limit`` bytes."""
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
    unsent: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return unsent.pop() if unsent else {"type": "http.disconnect"}

    return receive
