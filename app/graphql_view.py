"""The ``/graphql`` endpoint: Strawberry's ASGI view with the server's schema and context, refusals in
the API's error shape, and GraphQL over HTTP's status codes for the media type the request chose
(app.middleware.MediaTypeMiddleware)."""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson
from cross_web import HTTPException as StrawberryHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from app.graphql.context import Context
from app.graphql.documents import run_known
from app.graphql.limits import DocumentLimits
from app.graphql.schema import build_schema, format_result, root_field_names
from app.middleware import error_response
from app.negotiation import response_status
from app.observe import field_outcomes, request_code
from app.policy import Principal
from app.services import Services

if TYPE_CHECKING:
    from app.tracing import Tracing


class GraphQLView(GraphQL):
    """``/graphql``: Strawberry's ASGI view, with the schema built from the settings, the request's
    context, and the answer's status code under its media type (app.negotiation)."""

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
        self.root_fields = root_field_names(schema)
        self.giftcard_schema = schema
        super().__init__(schema, graphql_ide=None, allow_queries_via_get=True, subscription_protocols=())
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Strawberry answers malformed requests with plain text; ours are JSON with a code.
        request = Request(scope, receive)
        parsed = _PARSED.set(None)
        try:
            response = await self._run_known(request) if scope["method"] == "POST" else None
            if response is None:
                response = await self.run(request)
        except StrawberryHTTPException as exc:
            response = _refusal(exc)
        finally:
            _PARSED.reset(parsed)
        await response(scope, receive, send)

    async def _run_known(self, request: Request) -> Response | None:
        """A POST of a known document (app.graphql.documents) in plain JSON, answered as Strawberry's
        view would (same context, result, status and headers) without its request adapter, content
        type parsing and execution layers; None, with the body kept for the view, for anything else."""
        known_documents = self.giftcard_schema.known
        if known_documents is None or request.headers.get("content-type") not in _PLAIN_JSON:
            return None
        if self._get_stream_transport_from_headers(request.headers) is not None:
            return None
        body = await request.body()
        data = _json_object(body)
        if data is None:
            return None
        _PARSED.set((body, data))  # for the view, if it runs this request (decode_json)
        query, variables, name = data.get("query"), data.get("variables"), data.get("operationName")
        extensions = data.get("extensions")
        if not isinstance(query, str) or not isinstance(name, str | None):
            return None
        known = known_documents.get(query, name)
        if (
            known is None
            or known.operation_type not in _POST_OPERATIONS
            or not isinstance(variables, dict | None)
            or not isinstance(extensions, dict | None)
        ):
            return None
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, sub_response)
        operation = {"variable_values": variables, "operation_name": name}
        result = await run_known(self.giftcard_schema, known, context, None, operation, extensions)
        return self.create_response(await self.process_result(request, result), sub_response)

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        principal: Principal = request.state.principal.with_known_stores(self.services.stores.unknown)
        return Context(self.services, principal, request.state.request_id, request.scope["state"])

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
        parsed = _PARSED.get()
        if parsed is not None and parsed[0] is data:  # the body the fast path read, as it read it
            return parsed[1]
        decoded = orjson.loads(data)
        if not isinstance(decoded, dict | list):
            # Strawberry expects an object (or a batch); anything else would crash it into a 500.
            raise json.JSONDecodeError("a GraphQL request body is a JSON object", str(data), 0)
        return decoded

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


# Content types the fast path takes as they are; any other goes through Strawberry's parsing.
_PLAIN_JSON = frozenset({"application/json", "application/json; charset=utf-8"})
_POST_OPERATIONS = (OperationType.QUERY, OperationType.MUTATION)
# The request body the fast path parsed (the same bytes object) and its JSON object: a request it
# leaves to Strawberry's view is not parsed again.
_PARSED: ContextVar[tuple[bytes, dict[str, Any]] | None] = ContextVar("_PARSED", default=None)


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object; None when it is anything else (the view refuses it)."""
    if body[:1] != b"{":
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _refusal(exc: StrawberryHTTPException) -> Response:
    """Strawberry's refusal of a malformed request, in the API's error shape."""
    if isinstance(exc.__cause__, InvalidOperationTypeError):  # a mutation over GET
        return error_response(405, exc.reason, headers={"allow": "POST"})
    return error_response(exc.status_code, exc.reason)
