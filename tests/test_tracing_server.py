"""``giftcards serve`` with OTEL_EXPORTER_OTLP_ENDPOINT set sends its traces over OTLP/HTTP, from each
worker, continuing a caller's ``traceparent``: grep the protobuf bodies a small receiver on loopback
is sent for codes, PINs and tokens, and decode them for the spans expected."""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.test_concurrency import Server, giftcards, mint

CODE, PIN, WRONG_PIN = "OTLPPHYS55210987", "80264513", "31597531"
ADD = """mutation Add($giftcard: GiftCardAddInput!) { giftcardAdd(giftcard: $giftcard) { id } }"""
TRANS = """mutation Debit($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id balance } }"""
LOOKUP = "query Lookup($code: String!) { giftcard(code: $code) { results { id balance } } }"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.bodies.append(body if self.path == "/v1/traces" else b"wrong path " + self.path.encode())
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Handler", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


def _spans(bodies: list[bytes]) -> list[Any]:
    spans = []
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans += list(scope_spans.spans)
    return spans


def _post(url: str, token: str, query: str, variables: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _traffic(url: str, admin: str, pos: str) -> None:
    """A card with a PIN, loaded; then lookups and debits by its code as a till sends them."""
    _post(url, admin, ADD, {"giftcard": {"physicalCode": CODE, "physicalPin": PIN}})
    trans = {"codeType": "PHYSICAL", "code": CODE, "pin": PIN}
    loaded = _post(url, admin, TRANS, {"trans": {**trans, "transType": "ADD", "amount": "20.00"}})
    assert loaded["data"]["giftcardTransAdd"]["balance"] == "20.00", loaded
    debit = {"trans": {**trans, "transType": "USE", "amount": "-2.50"}}
    assert _post(url, pos, TRANS, debit)["data"]["giftcardTransAdd"]["balance"] == "17.50"
    wrong = _post(url, pos, TRANS, {"trans": {**debit["trans"], "pin": WRONG_PIN}})
    assert wrong["data"]["giftcardTransAdd"] is None
    get = httpx.get(
        f"{url}/graphql",
        params={"query": LOOKUP, "variables": f'{{"code": "{CODE.lower()}"}}'},
        headers={"Authorization": f"Bearer {pos}", "Accept": "application/json"},
    )
    assert get.status_code == 200 and get.json()["data"]["giftcard"]["results"], get.text
    traced = _post(url, pos, LOOKUP, {"code": CODE}, traceparent=f"00-{TRACE_ID}-b7ad6b7169203331-01")
    assert traced["data"]["giftcard"]["results"]


@pytest.mark.server
def test_the_server_sends_traces_with_no_code_pin_or_token(receiver, tmp_path: Path):
    endpoint, bodies = receiver
    env = {
        **os.environ,
        "GIFTCARDS_DATABASE_URL": f"sqlite:///{tmp_path}/g.db",
        "GIFTCARDS_STATE_DIR": str(tmp_path / "state"),
        "GIFTCARDS_LOG_LEVEL": "warning",
        "GIFTCARDS_CODE_ATTEMPT_LIMITS": "1000000/minute",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # milliseconds between batches
    }
    giftcards(env, "db", "upgrade")
    admin, pos = mint(env, "ops", "admin"), mint(env, "till-1", "pos")
    server = Server(env, tmp_path / "server.log", workers=2)
    server.start()
    try:
        _traffic(server.url, admin, pos)
        deadline = time.monotonic() + 30
        while "mutation Debit" not in {span.name for span in _spans(list(bodies))}:
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
    finally:
        server.stop()
    # then the receiver got the spans of requests, operations and SQL, the caller's trace continued
    spans = _spans(bodies)
    names = {span.name for span in spans}
    assert {"POST /graphql", "GET /graphql", "mutation Debit", "query Lookup", "mutation Add"} <= names
    assert any(attribute.key == "db.statement" for span in spans for attribute in span.attributes)
    assert bytes.fromhex(TRACE_ID) in {span.trace_id for span in spans}
    # and not one byte sequence of a code, a PIN, a token or a document
    raw = b"\n".join(bodies)
    needles = [CODE, CODE.lower(), PIN, WRONG_PIN, admin, pos, *(t.rsplit(".", 1)[1] for t in (admin, pos))]
    needles += [LOOKUP, TRANS, "physicalPin"]
    assert [needle for needle in needles if needle.encode() in raw] == []
