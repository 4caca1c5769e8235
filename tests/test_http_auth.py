"""Bearer tokens over HTTP: a bad token is a 401 saying nothing of why; no token is anonymous.

The refused cases are the tables of ``tests/auth/test_tokens.py``, sent through the whole app.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import jwt
import pytest
from starlette.testclient import TestClient

from app.auth.tokens import INVALID_TOKEN_MESSAGE
from app.http import create_app
from app.services import build_services
from tests.auth.test_tokens import (
    HMAC_REFUSED,
    KNOWN_KID,
    MALFORMED_HEADERS,
    PUBLIC_KEY_REFUSED,
    Keys,
    PublicKeyServer,
    TokenBuilder,
    bearer,
    bypass_proxies,
    claims,
    hs256,
    jwk,
    make_keys,
    public_key_settings,
    rs256,
    serve_jwks,
)
from tests.conftest import error_codes, gql

TYPENAME = "{ __typename }"
BY_ID = 'query { giftcard(id: "1") { limitedByPermission results { id } } }'
BY_CODE = """query ByCode($code: String!) {
  giftcard(code: $code) { limitedByPermission results { id } } }"""
A_CODE = {"code": "GC49288330"}

REFUSAL = {"errors": [{"message": INVALID_TOKEN_MESSAGE, "extensions": {"code": "UNAUTHENTICATED"}}]}
CHALLENGE = 'Bearer error="invalid_token"'


class Reply(Protocol):
    """What the tests read of a test client's response."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def post(
    client: TestClient, query: str, authorization: str | None, variables: dict[str, Any] | None = None
) -> Reply:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


def assert_refused(response: Reply, authorization: str) -> None:
    """401, the bearer challenge, the one generic body, and no piece of the credential echoed."""
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.json() == REFUSAL
    for piece in re.split(r"[ .]", authorization):
        if len(piece) >= 8:
            assert piece not in response.text


@pytest.fixture(scope="session")
def keys() -> Keys:
    return make_keys()


@pytest.fixture
def jwks(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    bypass_proxies(monkeypatch)
    with serve_jwks({"keys": [jwk(keys.rsa_key, KNOWN_KID)]}) as url:
        yield url


@pytest.fixture
def public_key_client(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, keys: Keys
) -> Iterator[Callable[[PublicKeyServer], TestClient]]:
    """``public_key_client(server)`` → a client of the app configured for that kind of key."""
    with ExitStack() as stack:

        def open_client(server: PublicKeyServer) -> TestClient:
            url = request.getfixturevalue("jwks") if server == "jwks" else None
            settings = public_key_settings(server, keys, tmp_path, url, database_url)
            services = build_services(settings)
            stack.callback(services.engine.dispose)
            return stack.enter_context(TestClient(create_app(settings, services)))

        yield open_client


# --- refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", HMAC_REFUSED.values(), ids=HMAC_REFUSED.keys())
def test_hmac_server_answers_401(token: TokenBuilder, client: TestClient, keys: Keys) -> None:
    # given a present but unacceptable bearer token
    authorization = bearer(token(keys))
    # when it comes with a query that needs no permission at all
    response = post(client, TYPENAME, authorization)
    # then the request is refused before GraphQL runs, saying nothing of why
    assert_refused(response, authorization)


@pytest.mark.parametrize("header", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS.keys())
def test_header_without_a_bearer_token_answers_401(header: str, client: TestClient) -> None:
    assert_refused(post(client, TYPENAME, header), header)


@pytest.mark.parametrize("case", PUBLIC_KEY_REFUSED.values(), ids=PUBLIC_KEY_REFUSED.keys())
def test_public_key_server_answers_401(
    case: tuple[PublicKeyServer, TokenBuilder],
    public_key_client: Callable[[PublicKeyServer], TestClient],
    keys: Keys,
) -> None:
    server, token = case
    authorization = bearer(token(keys))
    assert_refused(post(public_key_client(server), TYPENAME, authorization), authorization)


def test_refused_over_get_too(client: TestClient) -> None:
    authorization = bearer(hs256(claims(aud="another-api")))
    response = client.get(
        "/graphql",
        params={"query": TYPENAME},
        headers={"Authorization": authorization, "Accept": "application/json"},
    )
    assert_refused(response, authorization)


# --- anonymous ------------------------------------------------------------------------------------


def test_anonymous_may_ask_for_the_typename(client: TestClient) -> None:
    response = post(client, TYPENAME, None)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(("query", "variables"), [(BY_ID, None), (BY_CODE, A_CODE)], ids=["by-id", "by-code"])
def test_anonymous_guarded_query_is_unauthenticated(
    query: str, variables: dict[str, Any] | None, client: TestClient
) -> None:
    # given no Authorization header, when a guarded field is asked for
    body = gql(client, query, variables)
    # then GraphQL answers (200) with an UNAUTHENTICATED error, not an HTTP refusal
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["data"] == {"giftcard": None}


# --- accepted -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(
            {"permissions": ["FindGiftCardByCode", "UsePhysicalGiftCardCodes"]}, id="permissions-array"
        ),
        pytest.param({"permissions": None, "roles": ["storefront"]}, id="storefront-role"),
        pytest.param(
            {"permissions": None, "scope": "FindGiftCardByCode UsePhysicalGiftCardCodes"}, id="oauth2-scope"
        ),
    ],
)
def test_granted_lookup_by_code_runs(changes: dict[str, Any], client: TestClient) -> None:
    # given a valid token granting lookups by code
    token = hs256(claims(**changes))
    # when it looks a code up
    body = gql(client, BY_CODE, A_CODE, token=token)
    # then the lookup runs (nothing is found in an empty database)
    assert "errors" not in body
    assert body["data"]["giftcard"]["results"] == []


def test_a_role_grants_only_its_permissions(client: TestClient) -> None:
    body = gql(client, BY_ID, token=hs256(claims(permissions=None, roles=["storefront"])))
    assert error_codes(body) == ["FORBIDDEN"]


def test_unknown_permission_names_grant_nothing(client: TestClient) -> None:
    # given a valid token whose names are not in the catalogue
    token = hs256(
        claims(
            permissions=["findgiftcardbycode", "Everything"], roles=["root"], scope="openid ListGiftCards:all"
        )
    )
    # when it asks for guarded fields, then it is authenticated but forbidden
    assert error_codes(gql(client, BY_CODE, A_CODE, token=token)) == ["FORBIDDEN"]
    assert error_codes(gql(client, BY_ID, token=token)) == ["FORBIDDEN"]


def lookup_claims() -> dict[str, Any]:
    return claims(permissions=["FindGiftCardByCode", "UsePhysicalGiftCardCodes"])


@pytest.mark.parametrize(
    ("server", "sign"),
    [
        pytest.param(
            "rsa-file", lambda keys: rs256(lookup_claims(), keys.rsa_key, kid=None), id="rs256-key-file"
        ),
        pytest.param(
            "es-file",
            lambda keys: jwt.encode(lookup_claims(), keys.ec_key, algorithm="ES256"),
            id="es256-key-file",
        ),
        pytest.param("jwks", lambda keys: rs256(lookup_claims(), keys.rsa_key), id="rs256-jwks-known-kid"),
    ],
)
def test_public_key_server_accepts(
    server: PublicKeyServer,
    sign: Callable[[Keys], str],
    keys: Keys,
    public_key_client: Callable[[PublicKeyServer], TestClient],
) -> None:
    body = gql(public_key_client(server), BY_CODE, A_CODE, token=sign(keys))
    assert "errors" not in body
    assert body["data"]["giftcard"]["results"] == []
