"""The HTTP surface: health, readiness, GET/POST rules, body cap, error codes, the IDE page."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from app.errors import ConfigurationError
from app.http import create_app
from app.negotiation import GRAPHQL_RESPONSE
from app.services import build_services
from tests.conftest import error_codes, gql, make_settings


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "database": "ok"}


def test_readyz_reports_an_unreachable_database(tmp_path):
    settings = make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path)
    services = build_services(settings)
    client = TestClient(create_app(settings, services))  # no lifespan: the schema check would fail
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}
    assert "nobody" not in response.text


def readyz(tmp_path, **overrides):
    """/readyz of a server on an SQLite file with ``overrides`` of its settings."""
    settings = make_settings(f"sqlite:///{tmp_path}/g.db", tmp_path, **overrides)
    services = build_services(settings)
    try:
        return TestClient(create_app(settings, services)).get("/readyz")
    finally:
        services.engine.dispose()


def test_readyz_checks_a_configured_redis(tmp_path):
    response = readyz(tmp_path, redis_url="redis://127.0.0.1:6379/0", redis_prefix="readyz")
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ready", "database": "ok", "redis": "ok", "budgets": "shared"},
    )


def test_readyz_names_an_unreachable_redis_without_its_password(tmp_path, caplog):
    # Still ready: budgets fall back to this process, and sales go on (README, Security).
    redis_url = "redis://:hunter2secret@127.0.0.1:1/0"
    response = readyz(tmp_path, redis_url=redis_url)
    assert (response.status_code, response.json()) == (
        200,
        {"status": "degraded", "database": "ok", "redis": "unreachable", "budgets": "per process"},
    )
    assert "Redis unreachable (ConnectionError)" in caplog.text
    assert "hunter2secret" not in caplog.text + response.text


def test_queries_work_over_get(client, mint, seed):
    from app.enums import CodeType

    seed({CodeType.PHYSICAL: "GETCODE00001"}, balance=100)
    response = client.get(
        "/graphql",
        params={
            "query": "query($c: String!) { giftcard(code: $c) { results { balance } } }",
            "variables": '{"c": "GETCODE00001"}',
        },
        headers={"Authorization": f"Bearer {mint(roles=['storefront'])}", "Accept": "application/json"},
    )
    assert response.json() == {"data": {"giftcard": {"results": [{"balance": "1.00"}]}}}


def test_mutations_are_refused_over_get(client, mint):
    response = client.get(
        "/graphql",
        params={"query": 'mutation { giftcardAdd(giftcard: {physicalCode: "GETMUT0001"}) { id } }'},
        headers={"Authorization": f"Bearer {mint(roles=['admin'])}", "Accept": "application/json"},
    )
    assert response.status_code == 405  # GraphQL over HTTP; 400 before this release
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0] == {
        "message": "mutations are not allowed when using GET",
        "extensions": {"code": "BAD_USER_INPUT"},
    }


def test_request_id_is_echoed_or_made(client):
    given = client.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "bad id!"})
    assert len(made.headers["x-request-id"]) == 32


def test_oversized_bodies_are_refused(client):
    response = client.post(
        "/graphql",
        content=b'{"query": "' + b" " * 70_000 + b'{ __typename }"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_batched_requests_are_refused(client):
    response = client.post("/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}])
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]


def test_oversized_query_strings_are_refused(tmp_path, database_url):
    settings = make_settings(database_url, tmp_path, max_body_bytes=2000)
    with TestClient(create_app(settings)) as client:
        response = client.get(
            "/graphql",
            params={"query": "{ __typename }" + " " * 2000},
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 414
        assert error_codes(response.json()) == ["BAD_USER_INPUT"]
        assert (
            client.get(
                "/graphql", params={"query": "{ __typename }"}, headers={"Accept": "application/json"}
            ).status_code
            == 200
        )


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"query": "{ giftcard("}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ nosuchfield }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "{ a: __typename } { b: __typename }"}, "GRAPHQL_VALIDATION_FAILED"),
        (
            {
                "query": "query($c: String!) { giftcard(code: $c) { limitedByPermission } }",
                "variables": {"c": 5},
            },
            "BAD_USER_INPUT",
        ),
        ({"query": "query($c: String!) { giftcard(code: $c) { limitedByPermission } }"}, "BAD_USER_INPUT"),
    ],
    ids=["syntax", "unknown-field", "two-anonymous-operations", "variable-of-wrong-type", "variable-missing"],
)
def test_request_errors_carry_a_code_and_their_message(client, payload, code):
    response = client.post("/graphql", json=payload)
    body = response.json()
    assert set(error_codes(body)) == {code}
    assert body["errors"][0]["message"] != "Internal error."
    # a request error has no data entry ("data": null before this release); application/json says 200
    assert "data" not in body
    assert response.status_code == 200


SEVERAL_OPERATIONS = """mutation Add { giftcardAdd(giftcard: {physicalCode: "TWOOPS0001"}) { id } }
query Look { giftcard(code: "TWOOPS0001") { results { id } } }"""


@pytest.mark.parametrize(("accept", "status"), [("application/json", 200), (GRAPHQL_RESPONSE, 400)])
def test_several_operations_without_an_operation_name_run_none(client, mint, accept, status):
    # given a document of a mutation then a query, sent by an admin without operationName
    token = mint(roles=["admin"])
    headers = {"Authorization": f"Bearer {token}", "Accept": accept}
    response = client.post("/graphql", json={"query": SEVERAL_OPERATIONS}, headers=headers)
    # then it is a request error (nothing ran: no card was added), before this release the first ran
    assert response.status_code == status
    assert response.json() == {
        "errors": [
            {
                "message": "The document has several operations: operationName must name the one to run.",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }
    assert gql(client, 'query { giftcard(code: "TWOOPS0001") { results { id } } }', token=token) == {
        "data": {"giftcard": {"results": []}}
    }
    # and naming one runs that one alone
    named = client.post(
        "/graphql", json={"query": SEVERAL_OPERATIONS, "operationName": "Look"}, headers=headers
    )
    assert named.status_code == 200
    assert named.json() == {"data": {"giftcard": {"results": []}}}


@pytest.mark.parametrize(("accept", "status"), [("application/json", 200), (GRAPHQL_RESPONSE, 400)])
def test_an_unknown_operation_name_is_a_request_error(client, accept, status):
    payload = {"query": "query Known { __typename }", "operationName": "SECRETNAME"}
    response = client.post("/graphql", json=payload, headers={"Accept": accept})
    # GraphQL over HTTP: 200 under application/json (a bare 400 before this release)
    assert response.status_code == status
    body = response.json()
    assert "data" not in body and error_codes(body) == ["BAD_USER_INPUT"]
    assert "SECRETNAME" not in response.text


@pytest.mark.parametrize("name", [{"a": 1}, 0, False, ["Known"]])
def test_an_operation_name_that_is_not_a_string_is_malformed(client, name):
    response = client.post("/graphql", json={"query": "query Known { __typename }", "operationName": name})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]


def test_unexpected_errors_are_masked(client, mint, monkeypatch, caplog):
    # given a store that fails with an internal error carrying internal details
    def broken(*_args, **_kwargs):
        raise RuntimeError("SELECT secret FROM giftcard_codes -- key=abc")

    from app.store.cards import CardStore

    monkeypatch.setattr(CardStore, "find_by_id", broken)
    # when a trusted caller looks a card up
    body = gql(client, '{ giftcard(id: "1") { results { id } } }', token=mint(roles=["admin"]))
    # then the client sees a generic INTERNAL error, and the log has the details
    assert body["errors"][0]["message"] == "Internal error."
    assert error_codes(body) == ["INTERNAL"]
    assert "SELECT" not in str(body) and "secret" not in str(body)
    assert "SELECT secret" in caplog.text


def test_graphiql_page_in_development(client):
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "https://" not in page.text  # nothing from a CDN
    for asset in (
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ):
        assert client.get(f"/graphiql/static/{asset}").status_code == 200
    assert client.get("/graphiql/start.js").status_code == 200
    assert client.get("/graphiql/static/permissions.yaml").status_code == 404
    assert client.get("/graphiql/static/%2e%2e%2fpermissions.yaml").status_code == 404


def test_a_changed_graphiql_asset_is_refused(monkeypatch):
    from app import graphiql

    name = "graphiql.min.js"
    monkeypatch.setitem(graphiql.GRAPHIQL_ASSETS, name, ("text/javascript", "0" * 64))
    with pytest.raises(ConfigurationError, match=name):
        graphiql.load_graphiql_assets()


def test_production_serves_no_ide_and_no_introspection(tmp_path, database_url):
    settings = make_settings(database_url, tmp_path, env="production")
    with TestClient(create_app(settings)) as client:
        page = client.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        assert page.status_code == 406  # only HTML is asked for (404 before this release)
        assert client.get("/graphiql/static/graphiql.min.js").status_code == 404
        body = client.post("/graphql", json={"query": "{ __schema { types { name } } }"}).json()
        assert "errors" in body and "data" not in body
        assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {
            "data": {"__typename": "Query"}
        }


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"text"', b'{"query": 5}', b"{}"])
def test_malformed_bodies_get_a_client_error(client, body):
    response = client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("body", [b"null", b"5", b"true"])
def test_json_that_is_not_an_object_is_a_client_error(client, body):
    response = client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
