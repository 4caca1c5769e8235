"""CORS: pages on the origins in GIFTCARDS_CORS_ORIGINS may call the API, and read every answer.

Refusals made before GraphQL runs (a bad token, an oversized body, a throttled client secret, a
crash) carry the headers too, so that a page can tell why it was refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from app.enums import CodeType
from app.http import create_app
from app.services import Services
from tests.conftest import error_codes, make_settings

SHOP = "https://shop.example"
ELSEWHERE = "https://elsewhere.example"
LOOKUP = "query ($code: String!) { giftcard(code: $code) { results { balance } } }"

pytestmark = pytest.mark.settings(cors_origins=(SHOP, "http://127.0.0.1:5173"))


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """CORS happens before any database work; SQLite is enough."""
    path = tmp_path / "giftcards.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def preflight(
    client: TestClient, origin: str, method: str = "POST", headers: str = "authorization,content-type"
) -> httpx.Response:
    return client.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def listed(values: str) -> set[str]:
    return {value.strip().lower() for value in values.split(",")}


def assert_readable_by(response: httpx.Response, origin: str) -> None:
    headers = response.headers
    assert headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in headers
    assert {"retry-after", "www-authenticate", "x-request-id"} <= listed(
        headers["access-control-expose-headers"]
    )


def test_a_preflight_from_a_listed_origin_is_answered(client):
    # when a page on a listed origin asks whether it may POST with a bearer token and JSON
    response = preflight(client, SHOP)

    # then it may, from that origin only, with GET and POST, and without cookies
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    assert {"get", "post"} <= listed(response.headers["access-control-allow-methods"])
    assert {"authorization", "content-type"} <= listed(response.headers["access-control-allow-headers"])
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in listed(response.headers["vary"])


def test_an_unlisted_origin_is_not_allowed(client, mint):
    # when a page elsewhere asks, and then tries anyway
    asked = preflight(client, ELSEWHERE)
    tried = client.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": ELSEWHERE})

    # then neither answer lets its browser hand the response to the page
    assert asked.status_code == 400
    assert "access-control-allow-origin" not in asked.headers
    assert "access-control-allow-origin" not in tried.headers


def test_other_methods_are_not_allowed(client):
    response = preflight(client, SHOP, method="DELETE")
    assert response.status_code == 400
    assert "DELETE" not in response.headers["access-control-allow-methods"]


def test_a_lookup_from_a_listed_origin_is_readable(client, mint, seed):
    # given a card, and a storefront token held by a page on a listed origin
    seed({CodeType.PHYSICAL: "CORSCODE0001"}, balance=1250)
    token = mint(roles=["storefront"])

    # when the page looks the card up
    response = client.post(
        "/graphql",
        json={"query": LOOKUP, "variables": {"code": "CORSCODE0001"}},
        headers={"Origin": SHOP, "Authorization": f"Bearer {token}"},
    )

    # then the answer is the page's to read, request id included
    assert response.json() == {"data": {"giftcard": {"results": [{"balance": "12.50"}]}}}
    assert_readable_by(response, SHOP)


def test_a_bad_token_is_a_401_the_page_can_read(client):
    response = client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Origin": SHOP, "Authorization": "Bearer not-a-token"},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]
    assert_readable_by(response, SHOP)


@pytest.mark.settings(cors_origins=(SHOP,), max_body_bytes=2000)
def test_oversized_bodies_and_query_strings_are_refusals_the_page_can_read(client):
    body = client.post(
        "/graphql",
        content=b'{"query": "' + b" " * 3000 + b'{ __typename }"}',
        headers={"Origin": SHOP, "Content-Type": "application/json"},
    )
    query_string = client.get(
        "/graphql",
        params={"query": "{ __typename }" + " " * 3000},
        headers={"Origin": SHOP, "Accept": "application/json"},
    )
    assert (body.status_code, query_string.status_code) == (413, 414)
    assert_readable_by(body, SHOP)
    assert_readable_by(query_string, SHOP)


@pytest.mark.settings(cors_origins=(SHOP,), code_attempt_limits="1/minute")
def test_rate_limited_lookups_are_readable(client, mint):
    # a token of no role, which the code-attempt limits of the settings govern
    token = mint(permissions=["FindGiftCardByCode", "UsePhysicalGiftCardCodes"])
    headers = {"Origin": SHOP, "Authorization": f"Bearer {token}"}
    request = {"query": LOOKUP, "variables": {"code": "NOSUCHCODE01"}}
    client.post("/graphql", json=request, headers=headers)

    refused = client.post("/graphql", json=request, headers=headers)

    assert error_codes(refused.json()) == ["RATE_LIMITED"]
    assert_readable_by(refused, SHOP)


def test_a_throttled_client_secret_is_a_429_the_page_can_read(database_url, tmp_path):
    # given a limit of one failed client authentication a minute
    settings = make_settings(database_url, tmp_path, cors_origins=(SHOP,), client_secret_limits="1/minute")
    headers = {
        "Origin": SHOP,
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "Basic bm9ib2R5Omd1ZXNz",
    }  # nobody:guess
    with TestClient(create_app(settings)) as client:
        # when a second wrong secret is tried
        client.post("/oauth/token", content="grant_type=client_credentials", headers=headers)
        throttled = client.post("/oauth/token", content="grant_type=client_credentials", headers=headers)

    # then its 429 and the time to wait are the page's to read
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    assert_readable_by(throttled, SHOP)


def test_a_crash_is_a_500_the_page_can_read(settings, services: Services, monkeypatch):
    # given a token check that fails unexpectedly
    def broken(_: str | None) -> None:
        raise RuntimeError("key store unreachable")

    monkeypatch.setattr(services.tokens, "principal_from_header", broken)
    with TestClient(create_app(settings, services), raise_server_exceptions=False) as client:
        # when a page calls
        response = client.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": SHOP})

    # then the 500 still reaches it, and says nothing of the cause
    assert response.status_code == 500
    assert "key store" not in response.text
    assert_readable_by(response, SHOP)


@pytest.mark.settings(cors_origins=())
def test_no_origin_is_allowed_by_default(client):
    assert preflight(client, SHOP).status_code == 405
    answer = client.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": SHOP})
    assert "access-control-allow-origin" not in answer.headers
