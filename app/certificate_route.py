"""``GET /giftcards/{id}/certificate``: a card's printable certificate (app.domain.certificates
decides what it shows, app.certificates draws it) as PNG, JPEG or PDF, chosen by ``?format=`` or
else by ``Accept``. Behind the bearer token and query string checks of ``/graphql``; every answer,
refusals included, is ``Cache-Control: no-store``, and refusals are JSON in the API's error shape."""

from __future__ import annotations

import dataclasses
from functools import partial

from anyio import CapacityLimiter
from anyio.to_thread import run_sync
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.certificates import Format, draw
from app.errors import BadUserInputError, ErrorCode, GiftCardError
from app.middleware import BearerTokenMiddleware, QueryStringCapMiddleware, error_response
from app.negotiation import choose_media_type
from app.policy import Principal
from app.services import Services

PATH = "/giftcards/{id}/certificate"
_MEDIA_TYPES = tuple(item.media_type for item in Format)
_FORMATS = {item.media_type: item for item in Format}
_FORMAT_NAMES = frozenset(item.value for item in Format)
# Drawing one takes a core for a tenth of a second or more: at most this many at once, so that
# certificates wait for each other and never hold the worker threads /graphql's resolvers run in.
CONCURRENT_DRAWINGS = 2
_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.BAD_USER_INPUT: 400,
    ErrorCode.NOT_FOUND: 404,
}


def certificate_route(services: Services) -> Route:
    settings = services.settings
    middleware = [
        Middleware(NoStoreMiddleware),
        Middleware(QueryStringCapMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(BearerTokenMiddleware, tokens=services.tokens),
    ]
    # Every method reaches the endpoint, so that its 405 is JSON and not cached either.
    return Route(PATH, CertificateEndpoint(services), middleware=middleware)


@dataclasses.dataclass
class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer of the route, the middlewares' refusals included:
    a certificate shows a code in full, and no cache between here and the printer may keep it."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message["headers"] if name != b"cache-control"]
                message["headers"] = [*headers, (b"cache-control", b"no-store")]
            await send(message)

        await self.app(scope, receive, send_no_store)


@dataclasses.dataclass
class CertificateEndpoint:
    """The route's ASGI app (a class instance is one to Starlette, not a request handler)."""

    services: Services
    drawing: CapacityLimiter = dataclasses.field(default_factory=lambda: CapacityLimiter(CONCURRENT_DRAWINGS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.answer(Request(scope, receive))
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        if request.method != "GET":  # HEAD too: no certificate is drawn and audited for no one
            return error_response(405, "A certificate is fetched with GET.", headers={"allow": "GET"})
        file_format = _format(request)
        if isinstance(file_format, Response):
            return file_format
        principal: Principal = request.state.principal.with_known_stores(self.services.stores.unknown)
        card_id = request.path_params["id"]
        try:
            # Reading, decrypting and drawing are blocking work: a worker thread's, not the loop's.
            body = await run_sync(
                self.services.certificates.print,
                principal,
                card_id,
                partial(draw, file_format=file_format),
                limiter=self.drawing,
            )
        except GiftCardError as error:
            return _refusal(error)
        headers = {
            "content-disposition": f'inline; filename="giftcard-{card_id}.{file_format.value}"',
            "x-content-type-options": "nosniff",
        }
        return Response(body, media_type=file_format.media_type, headers=headers)


def _format(request: Request) -> Format | Response:
    """The format ``?format=`` names, else the one ``Accept`` takes; a 400 or a 406 refusal instead."""
    given = request.query_params.getlist("format")
    if given:
        if len(given) == 1 and given[0] in _FORMAT_NAMES:
            return Format(given[0])
        names = ", ".join(item.value for item in Format)
        return _refusal(BadUserInputError(f"format: once, one of {names}", field="format"))
    media_type = choose_media_type(request.headers.get("accept"), _MEDIA_TYPES)
    if media_type is None:
        message = f"The Accept header takes none of {', '.join(_MEDIA_TYPES)}."
        return error_response(406, message)
    return _FORMATS[media_type]


def _refusal(error: GiftCardError) -> Response:
    status = _STATUS.get(error.code, 400)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    return JSONResponse(body, status_code=status, headers=headers)
