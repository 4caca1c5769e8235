"""Traces (app.tracing): spans for each request, GraphQL operation and SQL statement, continuing the
caller's ``traceparent``, and not one code, PIN, token, code hash or document among their names,
attributes, events or statuses. Nothing at all while tracing is off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.routing import Route
from starlette.testclient import TestClient
from strawberry.extensions.tracing.opentelemetry import OpenTelemetryExtension

from app.enums import CodeType
from app.http import create_app
from tests.conftest import fund, gql

CODE, PIN, WRONG_PIN = "TRACEPHYS77310042", "86420975", "13579246"
PERSONAL = "TRACEPERSONAL0000042"
LOOKUP = """query Lookup($code: String!) {
  giftcard(code: $code) { limitedByPermission results { id balance codes { codeType code isMasked } } } }"""
INLINE = 'query { giftcard(code: "' + CODE.lower() + '") { results { id } } }'
DEBIT = """mutation Debit($trans: GiftCardTransInput!) {
  giftcardTransAdd(trans: $trans) { id balance } }"""
ADD = """mutation Add($giftcard: GiftCardAddInput!) { giftcardAdd(giftcard: $giftcard) { id } }"""
TRACE_ID, PARENT_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(settings, services, exporter) -> Iterator[TestClient]:
    with TestClient(create_app(settings, services, span_exporter=exporter)) as test_client:
        yield test_client


@pytest.fixture
def card(seed, services) -> int:
    card_id = seed({CodeType.PHYSICAL: CODE, CodeType.PERSONAL: PERSONAL}, pin=PIN, member_id="M-TRACE")
    fund(services.engine, card_id, 5000)
    return card_id


def _debit(pin: str) -> dict[str, Any]:
    code = "-".join([CODE[:5], CODE[5:10].lower(), CODE[10:]])  # as a customer might type it
    return {
        "trans": {"transType": "USE", "amount": "-1.00", "codeType": "PHYSICAL", "code": code, "pin": pin}
    }


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, tuple | list):
        return "\n".join(_text(item) for item in value)
    return str(value)


def _span_text(span: ReadableSpan) -> str:
    """Everything a span carries that an exporter sends, as one string."""
    parts = [span.name, str(span.status.description)]
    attribute_sets = [span.attributes, *(event.attributes for event in span.events)]
    attribute_sets += [link.attributes for link in span.links]
    parts += [event.name for event in span.events]
    for attributes in attribute_sets:
        parts += [f"{key}={_text(value)}" for key, value in (attributes or {}).items()]
    return "\n".join(parts)


def _stored_secrets(services) -> list[str]:
    """Each code's stored hash and ciphertext, as hex (PostgreSQL quotes bytes so in its errors)."""
    with services.engine.connect() as connection:
        rows = connection.execute(text("SELECT lookup_hash, ciphertext, pin_hash FROM giftcard_codes")).all()
    hexes = [bytes(value).hex() for row in rows for value in row[:2]]
    return hexes + [row[2] for row in rows if row[2]]


def _run_traffic(client: TestClient, mint) -> list[str]:
    """Lookups and PIN debits every way a code travels; returns the tokens used."""
    storefront, pos, admin = mint(roles=["storefront"]), mint(roles=["pos"]), mint(roles=["admin"])
    body = gql(client, LOOKUP, {"code": CODE}, token=storefront)  # masked: storefront
    assert body["data"]["giftcard"]["results"], body
    get = client.get(
        "/graphql",
        params={"query": LOOKUP, "variables": f'{{"code": "{PERSONAL}"}}'},
        headers={"Authorization": f"Bearer {admin}", "Accept": "application/json"},
    )
    assert get.status_code == 200 and get.json()["data"]["giftcard"]["results"], get.text
    assert gql(client, INLINE, token=admin)["data"]["giftcard"]["results"]
    assert gql(client, DEBIT, _debit(PIN), token=pos)["data"]["giftcardTransAdd"]["balance"] == "49.00"
    refused = gql(client, DEBIT, _debit(WRONG_PIN), token=pos)
    assert refused["data"]["giftcardTransAdd"] is None and refused["errors"], refused
    # a code that exists already: PostgreSQL's unique violation quotes the key that failed
    duplicate = gql(client, ADD, {"giftcard": {"physicalCode": CODE, "physicalPin": PIN}}, token=admin)
    assert duplicate["errors"], duplicate
    return [storefront, pos, admin]


def _needles(tokens: list[str], services) -> list[str]:
    documents = [LOOKUP, INLINE, DEBIT, ADD]
    return [
        CODE,
        CODE[5:10],  # a piece of it, as the dashed form splits it
        PERSONAL,
        PIN,
        WRONG_PIN,
        *tokens,
        *(token.rsplit(".", 1)[1] for token in tokens),  # signatures alone
        *documents,
        "limitedByPermission",  # in the documents' text only, never a root field
        *_stored_secrets(services),
    ]


def test_spans_name_operations_and_fields_but_hold_no_code_pin_token_or_document(
    traced, mint, card, exporter, services
):
    # given a traced app, when lookups (body, query string, inline) and PIN debits (right, wrong) run
    tokens = _run_traffic(traced, mint)
    spans = exporter.get_finished_spans()
    # then there are spans for the requests, the operations with their root fields, and the SQL
    server = [span for span in spans if span.kind is SpanKind.SERVER]
    assert len(server) == 6 and {span.name for span in server} == {"POST /graphql", "GET /graphql"}
    operations = {
        span.name: dict(span.attributes or {})
        for span in spans
        if span.name.startswith(("query", "mutation"))
    }
    assert operations["query Lookup"]["graphql.root_fields"] == ("giftcard",)
    assert operations["query"]["graphql.operation.type"] == "query"
    assert operations["mutation Debit"]["graphql.root_fields"] == ("giftcardTransAdd",)
    requests = {span.context.trace_id for span in server}
    in_requests = [
        str(span.attributes["db.statement"])
        for span in spans
        if span.kind is SpanKind.CLIENT and span.context.trace_id in requests and span.attributes
    ]
    # the ledger row's insert is traced: alone on SQLite, in the plain debit's call on PostgreSQL
    written = ("INSERT INTO giftcard_transactions", "FROM giftcard_plain_debit(")
    assert any(part in statement for statement in in_requests for part in written)
    # and no span carries a code, a PIN, a token, a stored hash or a document, in any case
    everything = [_span_text(span).lower() for span in spans]
    leaked = [
        needle for needle in _needles(tokens, services) for blob in everything if needle.lower() in blob
    ]
    assert leaked == []


_CODE_COLUMNS = """giftcard_id, code_type, lookup_hash, lookup_key_id, ciphertext, key_id, last4, pin_hash,
  pin_key_ids, expires_on, revoked_at, created_at, failed_pin_attempts, pin_locked_until"""
COPY_CODE_ROW = f"INSERT INTO giftcard_codes ({_CODE_COLUMNS}) SELECT {_CODE_COLUMNS} FROM giftcard_codes"


def test_failures_are_marked_by_error_type_only(traced, mint, card, exporter, services):
    # given a debit refused for a wrong PIN, and a statement PostgreSQL refuses quoting the key (a hash)
    gql(traced, DEBIT, _debit(WRONG_PIN), token=mint(roles=["pos"]))
    with pytest.raises(IntegrityError), services.engine.begin() as connection:
        connection.execute(text(COPY_CODE_ROW))
    spans = exporter.get_finished_spans()
    # then each failure is an error named by its type, with no message, event or stack recorded
    failed = {span.name.split()[0]: span for span in spans if span.status.status_code is StatusCode.ERROR}
    assert failed["GraphQL"].status.description == "CardNotUsableError"
    assert failed["INSERT"].status.description in {"IntegrityError", "UniqueViolation"}
    assert all(span.status.description == span.attributes["error.type"] for span in failed.values())
    assert all(not span.events for span in spans)
    everything = "\n".join(_span_text(span).lower() for span in spans)
    assert [secret for secret in _stored_secrets(services) if secret.lower() in everything] == []


def test_a_callers_traceparent_is_continued(traced, mint, card, exporter):
    exporter.clear()  # the card's own statements
    # given a request carrying a W3C traceparent
    response = traced.post(
        "/graphql",
        json={"query": LOOKUP, "variables": {"code": CODE}},
        headers={
            "Authorization": f"Bearer {mint(roles=['storefront'])}",
            "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
        },
    )
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    # then every span is in the caller's trace, and the request's span is a child of the caller's
    assert spans and {f"{span.context.trace_id:032x}" for span in spans} == {TRACE_ID}
    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.parent is not None and f"{server.parent.span_id:016x}" == PARENT_ID


def test_a_crash_is_recorded_by_type_without_its_message(settings, services, exporter):
    # given a route that fails with a message holding a code
    app = create_app(settings, services, span_exporter=exporter)

    async def crash(_: Any) -> None:
        raise RuntimeError(f"could not handle {CODE}")

    app.router.routes.append(Route("/crash", crash))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/crash").status_code == 500
    # then its span is an error named by the exception's type, and the code is nowhere
    (span,) = [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert span.name == "GET /crash"
    assert span.status.description == "RuntimeError" and not span.events
    assert CODE not in _span_text(span)


def _tracing_extensions(app) -> list[object]:
    (graphql,) = [route for route in app.routes if isinstance(route, Route) and route.path == "/graphql"]
    built = [factory() for factory in cast(Any, graphql.endpoint).schema.extensions]
    return [extension for extension in built if isinstance(extension, OpenTelemetryExtension)]


def test_nothing_is_traced_unless_asked(settings, services, exporter):
    # given settings without an OTLP endpoint, and no exporter
    assert settings.otlp_traces_endpoint is None
    app = create_app(settings, services)
    # then the app has no tracing middleware and the schema no tracing extension
    assert "_TracedRequests" not in {
        getattr(middleware.cls, "__name__", "") for middleware in app.user_middleware
    }
    assert _tracing_extensions(app) == []
    # (where a traced app has both)
    traced = create_app(settings, services, span_exporter=exporter)
    assert "_TracedRequests" in {
        getattr(middleware.cls, "__name__", "") for middleware in traced.user_middleware
    }
    assert len(_tracing_extensions(traced)) == 1


def test_headers_stay_out_even_when_the_environment_asks_for_them(
    settings, services, exporter, card, mint, monkeypatch
):
    # given an operator's OTEL_* variables asking the instrumentation to capture every header
    for direction in ("REQUEST", "RESPONSE"):
        monkeypatch.setenv(f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_{direction}", ".*")
    token = mint(roles=["storefront"])
    with TestClient(create_app(settings, services, span_exporter=exporter)) as client:
        # when a request carries a bearer token
        assert gql(client, LOOKUP, {"code": CODE}, token=token)["data"]["giftcard"]["results"]
    # then no span holds it, nor any header but the ones the middleware is shown
    spans = exporter.get_finished_spans()
    assert spans and not any(token.rsplit(".", 1)[1] in _span_text(span) for span in spans)
    assert not any(
        key.startswith("http.request.header.authorization") for span in spans for key in span.attributes or {}
    )
