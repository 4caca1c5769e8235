"""Log lines (app.logs): one line per answered request with its outcome code, in JSON or text; every
other line (ours, uvicorn's, Alembic's) in the same format; never a code, PIN or token."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from app import cli
from app.config import Settings, load_settings
from app.enums import CodeType
from app.errors import ConfigurationError
from app.http import create_app
from app.logs import HANDLER_NAME, JsonFormatter, configure_logging, request_log
from app.services import Services
from tests.conftest import fund, gql
from tests.test_concurrency import Server, giftcards, server_env
from tests.test_concurrency import mint as mint_with_cli
from tests.test_config import PRODUCTION

CODE, PIN = "LOGLINE55661234", "908172635401"
ADD = 'mutation { giftcardAdd(giftcard: {physicalCode: "NEWCARD0001"}) { id } }'
LOOKUP = "query($c: String!) { giftcard(code: $c) { results { id } } }"
TRANS = "mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id } }"
Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def lines() -> Iterator[Lines]:
    """Every log line the app writes during the test, at DEBUG, through the JSON formatter; the
    callable parses them (each must parse). The test client's own lines (its URLs) are not the app's."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(lambda record: not record.name.startswith(("httpx", "httpcore")))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def logged(settings: Settings, services: Services) -> Iterator[TestClient]:
    """The app with the JSON request line as its sink."""
    sink = request_log(settings.model_copy(update={"log_format": "json"}))
    with TestClient(create_app(settings, services, sinks=[sink])) as test_client:
        yield test_client


def request_lines(lines: Lines) -> list[dict[str, Any]]:
    return [line for line in lines() if line["logger"] == "app.requests"]


def post(client: TestClient, query: str, token: str | None = None, request_id: str = "") -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client.post("/graphql", json={"query": query}, headers={**headers, "X-Request-ID": request_id or "r"})


def test_a_refused_mutation_logs_its_code_not_its_status(logged, lines, mint):
    # given a POS token, which may not create cards, and no token at all
    token = mint(roles=["pos"], sub="pos-7")
    # when each tries to create a card
    post(logged, ADD, token=token, request_id="req-forbidden")
    post(logged, ADD, request_id="req-anonymous")
    # then each request is one line, with the refusal's code beside the status
    forbidden, anonymous = request_lines(lines)
    assert forbidden["time"] and (forbidden["level"], forbidden["message"]) == ("INFO", "request")
    assert {key: forbidden[key] for key in forbidden if key not in ("time", "duration_ms")} == {
        "level": "INFO",
        "logger": "app.requests",
        "message": "request",
        "request_id": "req-forbidden",
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "code": "FORBIDDEN",
        "operation": "mutation",
        "fields": ["giftcardAdd"],
        "subject": "pos-7",
        "client": "testclient",
    }
    assert isinstance(forbidden["duration_ms"], float) and forbidden["duration_ms"] > 0
    assert (anonymous["request_id"], anonymous["code"], anonymous["subject"]) == (
        "req-anonymous",
        "UNAUTHENTICATED",
        None,
    )


def test_root_fields_with_other_outcomes_carry_their_codes(logged, lines, mint):
    token = mint(permissions=["FindGiftCardByCode"])
    post(logged, '{ first: __typename second: giftcard(id: "1") { limitedByPermission } }', token=token)
    post(logged, "{ a: __typename b: __typename }", token=token)
    mixed, same = request_lines(lines)
    assert (mixed["fields"], mixed["field_codes"], mixed["code"]) == (
        ["__typename", "giftcard"],
        ["OK", "FORBIDDEN"],
        "FORBIDDEN",
    )
    assert (same["fields"], same["code"]) == (["__typename", "__typename"], "OK")
    assert "field_codes" not in same


def test_other_routes_log_their_line_too(logged, lines):
    logged.get("/healthz", headers={"X-Request-ID": "probe-1"})
    logged.get("/nowhere?code=LOGLINE55661234")
    probe, missing = request_lines(lines)
    assert (probe["request_id"], probe["path"], probe["code"], probe["fields"]) == (
        "probe-1",
        "/healthz",
        "OK",
        [],
    )
    assert (missing["path"], missing["status"], missing["code"]) == ("/nowhere", 404, "NOT_FOUND")
    assert CODE not in json.dumps(lines())


def test_no_code_pin_or_token_reaches_a_log_line(logged, lines, mint, seed, services):
    # given a funded card whose printed code has a PIN, and a POS token
    fund(services.engine, seed({CodeType.PHYSICAL: CODE}, pin=PIN), 1000)
    token = mint(roles=["pos"])
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    debit = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": CODE}
    # when the code is looked up from variables, from the document, from a GET query string, and
    # with a wrong token; and debited with its PIN, and with a wrong one
    gql(logged, LOOKUP, {"c": CODE}, token=token)
    gql(logged, f'{{ giftcard(code: "{CODE}") {{ results {{ id }} }} }}', token=token)
    logged.get("/graphql", params={"query": LOOKUP, "variables": json.dumps({"c": CODE})}, headers=headers)
    logged.get("/graphql", params={"query": f'{{ giftcard(code: "{CODE}") {{ limitedByPermission }} }}'})
    tampered = {"Authorization": f"Bearer {token[:-4]}abcd"}
    logged.post("/graphql", json={"query": LOOKUP, "variables": {"c": CODE}}, headers=tampered)
    assert "errors" not in gql(logged, TRANS, {"trans": {**debit, "pin": PIN}}, token=token)
    gql(logged, TRANS, {"trans": {**debit, "pin": PIN[::-1]}}, token=token)
    # then every request left its line, and no line holds the code, the PIN or the token
    logged_lines = lines()
    assert [line["code"] for line in request_lines(lambda: logged_lines)] == [
        "OK",
        "OK",
        "OK",
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "OK",
        "CARD_NOT_USABLE",
    ]
    text = json.dumps(logged_lines)
    secrets = [CODE, CODE.lower(), CODE[:-4], PIN, PIN[::-1], token, token.rsplit(".", 1)[1]]
    assert [secret for secret in secrets if secret in text] == []


def test_an_unexpected_error_is_one_line_with_its_traceback_in_a_field(logged, lines, mint, monkeypatch):
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("SELECT secret FROM giftcard_codes")

    from app.store.cards import CardStore

    monkeypatch.setattr(CardStore, "find_by_id", broken)
    post(
        logged, '{ giftcard(id: "1") { results { id } } }', token=mint(roles=["admin"]), request_id="req-500"
    )
    [error] = [line for line in lines() if line["level"] == "ERROR"]
    assert error["logger"] == "app.graphql" and "req-500" in error["message"]
    assert error["exception"].startswith("Traceback") and "RuntimeError: SELECT secret" in error["exception"]
    [request] = request_lines(lines)
    assert (request["request_id"], request["code"]) == ("req-500", "INTERNAL")


def test_text_lines_say_the_same_for_people(settings, services, mint, caplog):
    caplog.set_level(logging.INFO, logger="app.requests")
    with TestClient(create_app(settings, services, sinks=[request_log(settings)])) as client:
        post(client, ADD, token=mint(roles=["pos"], sub="pos-7"), request_id="req-1")
        post(client, '{ first: __typename second: giftcard(id: "1") { limitedByPermission } }')
    forbidden, mixed = [record.getMessage() for record in caplog.records if record.name == "app.requests"]
    assert forbidden.startswith("POST /graphql 200 FORBIDDEN ")
    assert forbidden.endswith(
        " ms mutation fields=giftcardAdd request_id=req-1 subject=pos-7 client=testclient"
    )
    assert " fields=__typename:OK,giftcard:UNAUTHENTICATED " in mixed


# --- the configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "json_logs"),
    [
        ({}, False),
        ({"GIFTCARDS_LOG_FORMAT": "json"}, True),
        (PRODUCTION, True),
        ({**PRODUCTION, "GIFTCARDS_LOG_FORMAT": "text"}, False),
    ],
    ids=["development", "development-json", "production", "production-text"],
)
def test_log_format_is_json_in_production_and_text_in_development(tmp_path, environ, json_logs):
    assert load_settings({**environ, "GIFTCARDS_STATE_DIR": str(tmp_path)}).json_logs is json_logs


def test_an_unknown_log_format_names_the_ones_there_are(tmp_path):
    with pytest.raises(ConfigurationError, match=r"GIFTCARDS_LOG_FORMAT: .*'json' or 'text'"):
        load_settings({"GIFTCARDS_LOG_FORMAT": "xml", "GIFTCARDS_STATE_DIR": str(tmp_path)})


def test_configured_logging_writes_every_logger_through_one_handler(tmp_path, capsys):
    settings = load_settings({"GIFTCARDS_LOG_FORMAT": "json", "GIFTCARDS_STATE_DIR": str(tmp_path)})
    # given uvicorn's own configuration in place (a handler of its own, not propagating)
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(sys.stdout))
    logging.getLogger("uvicorn.error").propagate = False
    # when logging is configured twice (the server, then a worker in the same process)
    configure_logging(settings)
    configure_logging(settings)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7, extra={"color_message": "x"})
    logging.getLogger("alembic.runtime.migration").info("Running upgrade")
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /graphql?query=x HTTP/1.1" 200')
    # then one handler writes JSON lines to standard error, and uvicorn's access logger has none
    assert [handler.name for handler in logging.getLogger().handlers].count(HANDLER_NAME) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert [(line["logger"], line["message"]) for line in map(json.loads, err.splitlines())] == [
        ("uvicorn.error", "Started server process [7]"),
        ("alembic.runtime.migration", "Running upgrade"),
    ]
    assert not logging.getLogger("uvicorn.access").hasHandlers()


# --- the real server and the CLI, in JSON -----------------------------------------------------------


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a process's output as JSON (a line that does not parse fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.server
def test_the_real_server_writes_only_json_lines_one_per_request(tmp_path):
    # given the real server with two workers, logging JSON at INFO
    env = {**server_env(f"sqlite:///{tmp_path}/logs.db", tmp_path), "GIFTCARDS_LOG_FORMAT": "json"}
    env["GIFTCARDS_LOG_LEVEL"] = "info"
    giftcards(env, "db", "upgrade")
    admin, pos = mint_with_cli(env, "ops-1", "admin"), mint_with_cli(env, "till-7", "pos")
    server = Server(env, tmp_path / "server.log", workers=2)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            # when a card with a code and a PIN is made, the code looked up with GET, a debit made
            # with its PIN, and a mutation the POS token may not make is refused
            created = client.post(
                "/graphql",
                json={
                    "query": f'mutation {{ giftcardAdd(giftcard: {{physicalCode: "{CODE}", '
                    f'physicalPin: "{PIN}"}}) {{ id }} }}'
                },
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert "errors" not in created.json(), created.text
            client.get(
                "/graphql",
                params={"query": LOOKUP, "variables": json.dumps({"c": CODE})},
                headers={"Authorization": f"Bearer {pos}", "Accept": "application/json"},
            )
            client.post(
                "/graphql",
                json={"query": ADD},
                headers={"Authorization": f"Bearer {pos}", "X-Request-ID": "logs-forbidden-1"},
            )
    finally:
        server.stop()
    # then every line of its output is JSON, startup and shutdown included
    output = (tmp_path / "server.log").read_text()
    lines = _json_lines(output)
    messages = {(line["logger"], line["message"]) for line in lines}
    assert ("uvicorn.error", "Application startup complete.") in messages
    assert ("alembic.runtime.migration", "Context impl SQLiteImpl.") in messages
    assert any(logger == "app.cli" and message.startswith("serving on") for logger, message in messages)
    # and the refused mutation is one line with its code, subject and address; uvicorn wrote none
    [refused] = [line for line in lines if line.get("request_id") == "logs-forbidden-1"]
    assert (refused["logger"], refused["method"], refused["path"], refused["status"]) == (
        "app.requests",
        "POST",
        "/graphql",
        200,
    )
    assert (refused["code"], refused["fields"], refused["subject"], refused["client"]) == (
        "FORBIDDEN",
        ["giftcardAdd"],
        "till-7",
        "127.0.0.1",
    )
    assert [line["path"] for line in lines if line.get("method") == "GET"].count("/graphql") == 1
    assert not [line for line in lines if line["logger"] == "uvicorn.access" or "HTTP/1.1" in line["message"]]
    # and no line holds the code, the PIN or a token
    assert [secret for secret in (CODE, CODE[:-4], PIN, admin, pos) if secret in output] == []


def test_a_refusal_to_serve_is_a_json_line_too(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GIFTCARDS_LOG_FORMAT", "json")
    assert cli.main(["serve", "--port", "1"]) == 2
    refusal = _json_lines(capsys.readouterr().err)[-1]
    assert (refusal["level"], refusal["logger"]) == ("ERROR", "app.cli")
    assert refusal["message"].endswith("run `giftcards db upgrade` first")


def test_db_upgrade_writes_alembic_and_its_own_lines_in_json(tmp_path):
    env = {**server_env(f"sqlite:///{tmp_path}/fresh.db", tmp_path), "GIFTCARDS_LOG_FORMAT": "json"}
    env["GIFTCARDS_LOG_LEVEL"] = "info"
    done = giftcards(env, "db", "upgrade")
    lines = _json_lines(done.stdout + done.stderr)
    assert {line["level"] for line in lines} == {"INFO"}
    upgrades = [line["message"] for line in lines if line["logger"] == "alembic.runtime.migration"]
    assert upgrades and upgrades[2].startswith("Running upgrade  -> 0001")
    assert lines[-1]["logger"] == "app.cli" and lines[-1]["message"].startswith(
        "database schema is at revision"
    )
