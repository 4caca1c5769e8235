"""`giftcards serve`: how many workers (one on SQLite), uvicorn's options from the settings, request
heads capped as they arrive, and X-Forwarded-For believed from trusted proxies only."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from starlette.testclient import TestClient
from uvicorn.server import ServerState

from app import cli
from app.auth.tokens import issue_token
from app.config import Settings
from app.http import create_app
from app.server import HeadCappedHttpToolsProtocol, served_workers, uvicorn_options
from app.services import build_services
from tests.conftest import ROOT, gql, make_settings
from tests.test_concurrency import Server, giftcards, mint, server_env

ADD_CARD = 'mutation { giftcardAdd(giftcard: {physicalCode: "PROXIED0001"}) { id } }'
EVENTS = "query { auditEvents(first: 100) { edges { node { action clientAddress } } } }"
SEVERAL_MB = 16 * 1024 * 1024  # more than loopback's socket buffers hold, so a refusal shows


class _Transport(asyncio.Transport):
    """What a protocol writes, and whether it closed the connection."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("a refused request reached the app")


@pytest.fixture
def environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # `serve` writes to the environment for its workers: give it a copy to write to
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/serve.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GIFTCARDS_PERMISSIONS_FILE", str(ROOT / "permissions.yaml"))
    assert cli.main(["db", "upgrade"]) == 0
    yield


@pytest.fixture
def served_options(environ: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `giftcards serve` hands uvicorn, with GIFTCARDS_MAX_HEADER_BYTES=4096 and two proxies."""
    monkeypatch.setenv("GIFTCARDS_MAX_HEADER_BYTES", "4096")
    monkeypatch.setenv("GIFTCARDS_FORWARDED_ALLOW_IPS", "10.0.0.7, 192.168.0.0/16")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    assert cli.main(["serve", "--workers", "2"]) == 0
    [options] = calls
    return options


def _config(options: dict[str, Any]) -> uvicorn.Config:
    """uvicorn's config from what `serve` passes (the HTTP options; the app here is a stand-in)."""
    keep = {"http", "proxy_headers", "forwarded_allow_ips"}
    config = uvicorn.Config(_never_called, log_config=None, **{k: v for k, v in options.items() if k in keep})
    config.load()
    return config


def _protocol(options: dict[str, Any]) -> tuple[HeadCappedHttpToolsProtocol, _Transport]:
    """The protocol uvicorn would build for one connection from these options, connected."""
    config = _config(options)
    loop = asyncio.new_event_loop()
    build: Any = config.http_protocol_class  # uvicorn calls it with these
    protocol = build(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    loop.close()  # nothing refused needs it
    transport = _Transport()
    protocol.connection_made(transport)
    assert isinstance(protocol, HeadCappedHttpToolsProtocol)
    return protocol, transport


def test_serve_hands_uvicorn_the_trusted_proxies(served_options):
    config = _config(served_options)
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == ["10.0.0.7", "192.168.0.0/16"]


def test_serve_caps_headers_that_arrive_whole(served_options):
    # given a connection to what `serve` runs, with headers of 4 KiB at most
    protocol, transport = _protocol(served_options)
    # when a request brings 5,000 bytes of headers in one piece
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 5000 + b"\r\n\r\n")
    # then it is answered 431 in the API's error shape and the connection closed; the app never ran
    assert transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert transport.written.endswith(
        b'{"errors":[{"message":"The request headers exceed 4096 bytes.",'
        b'"extensions":{"code":"BAD_USER_INPUT"}}]}'
    )
    assert transport.closed


def test_serve_refuses_unfinished_headers_once_past_the_cap(served_options):
    protocol, transport = _protocol(served_options)
    head = b"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    fed = 0
    # when an Authorization header keeps coming, a KiB at a time, and never ends
    for piece in [head] + [b"a" * 1024] * 1024:
        protocol.data_received(piece)
        fed += len(piece)
        if transport.closed:
            break
    # then it is refused as soon as more than the cap has arrived, without waiting for the rest
    assert transport.written.startswith(b"HTTP/1.1 431 ")
    assert fed <= 4096 + 2048


def test_serve_caps_the_request_target(served_options):
    protocol, transport = _protocol(served_options)
    # when a GET target keeps coming (a document may be as long as a body, 64 KiB, not longer than
    # httptools can parse)
    protocol.data_received(b"GET /graphql?query=")
    fed = 0
    while not transport.closed and fed < 1024 * 1024:
        protocol.data_received(b"q" * 4096)
        fed += 4096
    # then it is refused with 414 once past that
    assert transport.written.startswith(b"HTTP/1.1 414 Request-URI Too Long\r\n")
    assert b"The request target exceeds 65535 bytes." in transport.written
    assert fed <= 65535 + 4096


# --- the real server ------------------------------------------------------------------------------


def _send_head(url: str, head: bytes, piece: int = 64 * 1024) -> tuple[int | None, bool, float]:
    """Send a request head; the status answered (None: the connection was cut without one), whether
    the whole head could be sent, and how long it took."""
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    whole = True
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        try:
            for start in range(0, len(head), piece):
                connection.sendall(head[start : start + piece])
        except OSError:  # reset or broken pipe: the server stopped reading
            whole = False
        try:
            answer = connection.recv(64)
        except OSError:
            answer = b""
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, whole, time.perf_counter() - started


@pytest.mark.server
@pytest.mark.timing
def test_the_server_refuses_megabytes_of_header_and_serves_the_next_request(tmp_path):
    # given the real server, one worker, the default cap (16 KiB)
    env = server_env(f"sqlite:///{tmp_path}/edge.db", tmp_path)
    giftcards(env, "db", "upgrade")
    token = mint(env, "till-1", "pos")
    server = Server(env, tmp_path / "server.log", workers=1)
    server.start()
    try:
        # when a client sends an Authorization header of several MB
        huge = (
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + b"a" * SEVERAL_MB + b"\r\nContent-Length: 2\r\n\r\n{}"
        )
        status, whole, seconds = _send_head(server.url, huge)
        # then it is refused (431, or cut) before the server has read it all, quickly
        assert (status == 431 or status is None) and not whole, (status, whole)
        assert seconds < 5
        # and 40 KB of headers arriving in one piece are refused too
        status, _, _ = _send_head(
            server.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 40_000 + b"\r\n\r\n"
        )
        assert status == 431
        # while the same worker goes on serving: headers under the cap, then an ordinary request
        status, whole, _ = _send_head(
            server.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 15_000 + b"\r\n\r\n"
        )
        assert status == 200 and whole
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answer = client.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 200 and answer.json() == {"data": {"__typename": "Query"}}
        assert server.process is not None and server.process.poll() is None
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert "Refused with 431: The request headers exceed 16384 bytes." in log


# --- the client address behind a proxy -------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "address"),
    [
        ((), "203.0.113.7"),  # default: the loopback proxy is believed
        (("10.0.0.7",), "127.0.0.1"),
    ],  # a proxy not listed: its socket address is the client's
)
def test_x_forwarded_for_is_believed_from_trusted_proxies_only(database_url, tmp_path, trusted, address):
    # given the app wrapped as `giftcards serve` has uvicorn wrap it, reached from 127.0.0.1
    overrides = {"forwarded_allow_ips": trusted} if trusted else {}
    settings = make_settings(database_url, tmp_path, **overrides)
    services = build_services(settings)
    config = uvicorn.Config(create_app(settings, services), log_config=None, **uvicorn_options(settings))
    config.load()
    admin = issue_token(settings, services.policy, "admin", roles=["admin"], ttl_seconds=600)
    try:
        with TestClient(config.loaded_app, client=("127.0.0.1", 50000)) as client:
            # when a mutation arrives saying it was forwarded for 203.0.113.7
            response = client.post(
                "/graphql",
                json={"query": ADD_CARD},
                headers={"Authorization": f"Bearer {admin}", "X-Forwarded-For": "203.0.113.7"},
            )
            assert response.status_code == 200 and "errors" not in response.json(), response.text
            # then the audit trail records the address the proxy setting allows
            events = gql(client, EVENTS, token=admin)["data"]["auditEvents"]["edges"]
    finally:
        services.engine.dispose()
    assert [e["node"]["clientAddress"] for e in events if e["node"]["action"] == "giftcardAdd"] == [address]


# --- how many workers: one writer per SQLite file -------------------------------------------------


def _served(monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """What `giftcards serve ARGS` hands uvicorn (with the `environ` fixture's SQLite database)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    assert cli.main(["serve", *args]) == 0
    [options] = calls
    return options


def test_serve_runs_one_worker_on_sqlite_and_says_why(environ, monkeypatch, capfd):
    # when `giftcards serve --workers 3` is asked to serve an SQLite file
    options = _served(monkeypatch, "--workers", "3")
    # then it runs one process, its writer, and the log says why and how to run three anyway
    assert options["workers"] == 1
    assert os.environ["GIFTCARDS_WORKERS"] == "1"  # budgets are not divided among absent workers
    log = capfd.readouterr().err
    assert "serving SQLite with 1 worker, not 3" in log
    assert "giftcards serve --workers 3 --sqlite-multiprocess" in log
    assert "(development, 1 worker(s))" in log


def test_serve_runs_several_workers_on_sqlite_when_told_to(environ, monkeypatch, capfd):
    options = _served(monkeypatch, "--workers", "3", "--sqlite-multiprocess")
    assert options["workers"] == 3
    assert os.environ["GIFTCARDS_WORKERS"] == "3"
    assert "serving SQLite with 1 worker" not in capfd.readouterr().err


def test_one_worker_asked_for_is_one_worker_without_a_word(environ, monkeypatch, capfd):
    assert _served(monkeypatch)["workers"] == 1
    assert "serving SQLite with 1 worker" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("url", "requested", "multiprocess", "served"),
    [
        ("sqlite:///giftcards.db", 2, False, 1),
        ("sqlite:///giftcards.db", 2, True, 2),
        ("sqlite:///giftcards.db", 1, False, 1),
        ("postgresql+psycopg://giftcards@db:5432/giftcards", 4, False, 4),
        ("postgresql+psycopg://giftcards@db:5432/giftcards", 4, True, 4),
    ],
)
def test_several_workers_only_where_each_process_does_not_poll_a_lock(url, requested, multiprocess, served):
    workers, why = served_workers(Settings(database_url=url), requested, multiprocess)
    assert workers == served
    assert (why is None) == (served == requested)
