"""OpenTelemetry traces, built by app.http only when an OTLP endpoint is configured: a span per HTTP
request (continuing the caller's ``traceparent``), per GraphQL operation and resolver, and per SQL
statement, sent by this process's own tracer provider.

The stock instrumentations record the document, its variables, field arguments, query strings,
headers and driver error messages, which carry codes, PINs, tokens and code hashes. Here they are
never handed those: the HTTP middleware sees the path and the propagation headers only, the GraphQL
spans name the operation and its root fields, SQL spans keep the statement with its placeholders,
and a failure is recorded by its type, never its message.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Generator
from inspect import isawaitable
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.sqlalchemy import engine as sql_tracing
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.propagate import get_global_textmap
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.extensions import LifecycleStep, SchemaExtension
from strawberry.extensions.tracing.opentelemetry import OpenTelemetryExtension
from strawberry.extensions.tracing.utils import should_skip_tracing

from app.config import Settings
from app.db import TRACED

SERVICE_NAME = "giftcards"  # unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names one
_SERVER_SCOPE = "giftcards.server_scope"
# What the HTTP middleware may read of a request; its headers are cut down further (see _shown).
_SHOWN_SCOPE = ("type", "asgi", "http_version", "method", "scheme", "path", "root_path", "server", "client")
_SHOWN_HEADERS = frozenset({b"host", b"user-agent", b"content-length"})


MAX_OPERATION_NAME = 64  # characters of a client's operation name kept in a span


def _fail(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by the exception's type: its message can quote what the client sent."""
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))


class _OperationSpans(OpenTelemetryExtension):
    """Strawberry's tracing extension, naming the operation (type and name) and its root fields, and
    each resolver by its type and field: never the document, a variable, an argument, an alias (the
    client's own text) or an error message."""

    def __init__(self, *, tracer: Tracer, execution_context: Any = None) -> None:
        self._tracer, self._arg_filter, self._span_holder = tracer, None, {}
        if execution_context is not None:
            self.execution_context = execution_context

    def on_operation(self) -> Generator[None, None, None]:
        span = self._tracer.start_span("GraphQL operation", kind=SpanKind.INTERNAL)
        span.set_attribute("component", "graphql")
        self._span_holder[LifecycleStep.OPERATION] = span
        try:
            yield
        finally:
            span.end()

    def on_execute(self) -> Generator[None, None, None]:
        # Only a document that passed validation gets here: its root fields are the schema's names.
        context, span = self.execution_context, self._span_holder[LifecycleStep.OPERATION]
        document = context.graphql_document
        operation = get_operation_ast(document, context.operation_name) if document else None
        if document is not None and operation is not None:
            kind = operation.operation.value
            # the client's own name, cut to a length a span attribute should hold
            name = operation.name.value[:MAX_OPERATION_NAME] if operation.name else None
            span.update_name(f"{kind} {name}" if name else kind)
            span.set_attribute("graphql.operation.type", kind)
            if name:
                span.set_attribute("graphql.operation.name", name)
            span.set_attribute("graphql.root_fields", root_fields(document, operation.selection_set))
        yield

    async def resolve(
        self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo[Any], *args: str, **kwargs: Any
    ) -> Any:
        if should_skip_tracing(_next, info):
            result = _next(root, info, *args, **kwargs)
            return await result if isawaitable(result) else result
        parent = trace.set_span_in_context(self._span_holder[LifecycleStep.OPERATION])
        with self._tracer.start_as_current_span(
            f"GraphQL Resolving: {info.field_name}",
            context=parent,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attribute("graphql.parentType", info.parent_type.name)
            span.set_attribute("graphql.field", info.field_name)
            try:
                result = _next(root, info, *args, **kwargs)
                return await result if isawaitable(result) else result
            except Exception as exc:
                _fail(span, exc)
                raise


def root_fields(document: DocumentNode, selection_set: SelectionSetNode) -> list[str]:
    """The distinct names of the fields an operation selects at its root, through its fragments
    (each followed once), in order of appearance."""
    fragments = {
        node.name.value: node for node in document.definitions if isinstance(node, FragmentDefinitionNode)
    }
    names: dict[str, None] = {}
    followed: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop(0).selections:
            if isinstance(selection, FieldNode):
                names.setdefault(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in followed:
                followed.add(selection.name.value)
                if fragment := fragments.get(selection.name.value):
                    pending.append(fragment.selection_set)
    return list(names)


class _TracedRequests:
    """OpenTelemetry's ASGI middleware, handed a copy of each request's scope with no query string (a
    GET's document and variables) and only the headers it needs: propagation (``traceparent``), host,
    user agent and length. Never the Authorization header. The app gets the server's own scope."""

    def __init__(self, app: ASGIApp, provider: TracerProvider) -> None:
        self.app = app
        self.headers = _SHOWN_HEADERS | {name.encode() for name in get_global_textmap().fields}
        self.traced = OpenTelemetryMiddleware(
            self._call_app, tracer_provider=provider, exclude_spans=["receive", "send"]
        )
        # Not [] in the constructor: an empty list lets OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_* in.
        self.traced.http_capture_headers_server_request = None
        self.traced.http_capture_headers_server_response = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        shown = {key: scope[key] for key in _SHOWN_SCOPE if key in scope}
        shown["headers"] = [(name, value) for name, value in scope["headers"] if name in self.headers]
        shown["query_string"] = b""
        shown[_SERVER_SCOPE] = scope
        await self.traced(shown, receive, send)

    async def _call_app(self, shown: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(shown[_SERVER_SCOPE], receive, send)
        except Exception as exc:
            # Ended here, by type: the middleware would record the message and the stack of a crash.
            span = trace.get_current_span()
            _fail(span, exc)
            span.end()
            raise


def _sql_failed(context: ExceptionContext) -> None:
    """A failed statement's span, by the error's type: PostgreSQL's message quotes the key or row."""
    span = getattr(context.execution_context, "_otel_span", None)
    if span is not None:
        _fail(span, context.original_exception)
        span.end()


def _trace_sql(engine: Engine, provider: TracerProvider) -> None:
    """A span per statement on ``engine`` (its text with placeholders, never its parameters). Reads on
    a raw DBAPI connection (app.store.prepared's: lookups, the live code behind an address) run
    under their resolver's span instead."""
    tracer = provider.get_tracer(sql_tracing.__name__)
    usage = NoOpMeterProvider().get_meter(__name__).create_up_down_counter("db.client.connections.usage")
    sql_tracing.EngineTracer(tracer, engine, usage, enable_commenter=False)  # type: ignore[no-untyped-call]
    engine.update_execution_options(**{TRACED: True})  # app.store.prepared's writes, through the events
    event.remove(engine, "handle_error", sql_tracing._handle_error)
    event.listen(engine, "handle_error", _sql_failed)


def _resource() -> Resource:
    detected = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        return detected.merge(Resource({"service.name": SERVICE_NAME}))
    return detected


@dataclasses.dataclass(frozen=True)
class Tracing:
    """This process's tracer provider and what app.http wires it into."""

    provider: TracerProvider

    def schema_extensions(self) -> list[Callable[[], SchemaExtension]]:
        tracer = self.provider.get_tracer("strawberry")
        return [lambda: _OperationSpans(tracer=tracer)]

    def instrument(self, app: Starlette) -> Starlette:
        """``app`` with the HTTP middleware outermost, and the provider flushed when it stops."""
        app.add_middleware(_TracedRequests, provider=self.provider)
        serve = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[Any]:
            try:
                async with serve(app) as state:
                    yield state
            finally:
                self.provider.shutdown()  # sends what is still batched

        app.router.lifespan_context = lifespan
        return app


def start_tracing(settings: Settings, engine: Engine, exporter: SpanExporter | None = None) -> Tracing:
    """A tracer provider for this process (a worker calls this after it is forked), sending to the
    settings' OTLP endpoint in batches, or to ``exporter`` (tests) as each span ends; SQL on ``engine``
    traced. The SDK reads its other OTEL_* variables (sampler, batch delays, headers) here."""
    provider = TracerProvider(resource=_resource())
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint))
        )
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _trace_sql(engine, provider)
    return Tracing(provider)
