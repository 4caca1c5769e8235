"""POST /oauth/token: the client-credentials grant for clients registered in permissions.yaml."""

from __future__ import annotations

import base64
import logging
import shutil
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx2 as httpx
import jwt
import pytest
import redis
from starlette.testclient import TestClient

from app.auth import oauth
from app.auth.clients import add_client
from app.config import Settings
from app.errors import ConfigurationError
from app.http import create_app
from app.policy_file import load_policy
from app.services import Services, build_services
from tests.auth.test_tokens import make_keys, public_key_settings
from tests.conftest import JWT_SECRET, ROOT, error_codes, gql, make_settings

FORM = "application/x-www-form-urlencoded"
GRANT = {"grant_type": "client_credentials"}
POS, OFFICE = "pos-1", "office"  # roles pos and backoffice
BY_ID = 'query { giftcard(id: "1") { results { id } } }'
BY_CODE = "query ($code: String!) { giftcard(code: $code) { results { id } } }"
A_CODE = {"code": "GC49288330"}


@dataclass(frozen=True)
class Registered:
    path: Path
    secrets: dict[str, str]


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """A copy of permissions.yaml with two clients, registered the way `giftcards client add` does."""
    path = tmp_path_factory.mktemp("policy") / "permissions.yaml"
    shutil.copy(ROOT / "permissions.yaml", path)
    pos = add_client(path, POS, ["pos"])
    office = add_client(path, OFFICE, ["backoffice"])
    return Registered(path, {pos.id: pos.secret, office.id: office.secret})


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """The endpoint reads no database; SQLite is enough for the GraphQL calls that use its tokens."""
    path = tmp_path / "giftcards.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, registered: Registered) -> Settings:
    return make_settings(
        database_url, tmp_path, permissions_file=registered.path, client_secret_limits="1000/minute"
    )


@pytest.fixture
def open_client(
    database_url: str, tmp_path: Path, registered: Registered
) -> Iterator[Callable[..., TestClient]]:
    """``open_client(address=..., **settings)`` → a client of its own app (own counters)."""
    with _client_opener(database_url, tmp_path, registered) as opener:
        yield opener


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def open_client_on(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, registered: Registered
) -> Iterator[Callable[..., TestClient]]:
    """``open_client`` on SQLite and on PostgreSQL: the endpoint reads neither, whichever runs."""
    url = database_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with _client_opener(url, tmp_path, registered) as opener:
        yield opener


@contextmanager
def _client_opener(
    database_url: str, tmp_path: Path, registered: Registered
) -> Iterator[Callable[..., TestClient]]:
    with ExitStack() as stack:
        built: dict[tuple[Any, ...], Any] = {}

        def _open(address: str = "testclient", **overrides: Any) -> TestClient:
            key = tuple(sorted(overrides.items()))
            if key not in built:
                values = {"permissions_file": registered.path, **overrides}
                services = build_services(make_settings(database_url, tmp_path, **values))
                stack.callback(services.engine.dispose)
                built[key] = create_app(services.settings, services)
            return stack.enter_context(TestClient(built[key], client=(address, 50000)))

        yield _open


def basic(client_id: str, secret: str) -> str:
    """client_secret_basic: both halves form-urlencoded, then Base64 (RFC 6749 §2.3.1)."""
    return "Basic " + base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()


def request_token(
    client: TestClient,
    form: dict[str, str] | str | bytes | None = None,
    *,
    authorization: str | None = None,
    content_type: str | None = FORM,
) -> httpx.Response:
    body = urlencode(form) if isinstance(form, dict) else (form or "")
    headers = {"x-request-id": "token-request"}  # echoed back; a fresh one would differ per answer
    if content_type is not None:
        headers["content-type"] = content_type
    if authorization is not None:
        headers["authorization"] = authorization
    return client.post("/oauth/token", content=body, headers=headers)


def claims_of(token: str, issuer: str = "giftcards", audience: str = "giftcards-api") -> dict[str, Any]:
    return jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience=audience, issuer=issuer)


def assert_refused(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic realm=")


# --- issued -----------------------------------------------------------------------------------------


def test_basic_authentication_issues_a_token(
    client: TestClient, registered: Registered, services: Services
) -> None:
    # given a registered client, when it authenticates with HTTP Basic
    response = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS]))
    # then it gets a bearer token with its role's permissions, never cached
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == " ".join(sorted(services.policy.roles["pos"]))
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"].startswith("application/json")


def test_a_clients_token_has_its_roles_budget_whatever_its_scope(
    client: TestClient, registered: Registered, services: Services
) -> None:
    # given a pos client's token for all its permissions, and one for a narrower scope
    whole = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS])).json()
    narrow = request_token(
        client,
        {**GRANT, "scope": "FindGiftCardByCode UsePhysicalGiftCardCodes"},
        authorization=basic(POS, registered.secrets[POS]),
    ).json()
    # then both spend the pos role's budget, not the default, and gain no permission from it
    for token, granted in (
        (whole, services.policy.roles["pos"]),
        (narrow, {"FindGiftCardByCode", "UsePhysicalGiftCardCodes"}),
    ):
        principal = services.tokens.verify(token["access_token"])
        assert principal.budget == services.policy.budgets["pos"]
        assert principal.permissions == granted


def test_body_authentication_issues_a_token(client: TestClient, registered: Registered) -> None:
    form = {**GRANT, "client_id": POS, "client_secret": registered.secrets[POS]}
    response = request_token(client, form, content_type=f"{FORM}; charset=UTF-8")
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["sub"] == POS


def test_the_token_carries_exactly_the_clients_permissions(
    client: TestClient, registered: Registered, services: Services
) -> None:
    # given tokens issued to a pos client and to a back-office client
    pos = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS])).json()
    office = request_token(client, GRANT, authorization=basic(OFFICE, registered.secrets[OFFICE])).json()
    # then each names its client and its role's permissions, and the server's verifier agrees
    claims = claims_of(pos["access_token"])
    assert claims["sub"] == POS
    assert set(claims["permissions"]) == services.policy.roles["pos"]
    assert services.tokens.verify(pos["access_token"]).permissions == services.policy.roles["pos"]
    # and on /graphql: pos may look a code up but not list by id; back office may do both
    assert "errors" not in gql(client, BY_CODE, A_CODE, token=pos["access_token"])
    assert error_codes(gql(client, BY_ID, token=pos["access_token"])) == ["FORBIDDEN"]
    assert "errors" not in gql(client, BY_ID, token=office["access_token"])


def test_lifetime_and_claims_follow_the_settings(
    open_client: Callable[..., TestClient], registered: Registered
) -> None:
    client = open_client(
        issued_token_ttl_seconds=120, jwt_issuer="https://cards.example", jwt_audience="cards"
    )
    response = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS]))
    body = response.json()
    claims = claims_of(body["access_token"], issuer="https://cards.example", audience="cards")
    assert body["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120
    assert abs(claims["iat"] - time.time()) < 60
    assert claims["jti"]


def test_scope_narrows_the_permissions(
    client: TestClient, registered: Registered, services: Services
) -> None:
    # given a scope naming two of the pos client's permissions
    form = {**GRANT, "scope": "UsePhysicalGiftCardCodes FindGiftCardByCode"}
    # when the client asks for a token
    response = request_token(client, form, authorization=basic(POS, registered.secrets[POS]))
    # then the token carries those two only
    body = response.json()
    assert body["scope"] == "FindGiftCardByCode UsePhysicalGiftCardCodes"
    assert services.tokens.verify(body["access_token"]).permissions == {
        "FindGiftCardByCode",
        "UsePhysicalGiftCardCodes",
    }
    assert "errors" not in gql(client, BY_CODE, A_CODE, token=body["access_token"])


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("ListGiftCards", id="not-the-clients"),
        pytest.param("FindGiftCardByCode Everything", id="unknown-name"),
        pytest.param("pos", id="a-role-name"),
        pytest.param("FindGiftCardByCode  UsePhysicalGiftCardCodes", id="double-space"),
        pytest.param(" FindGiftCardByCode", id="leading-space"),
        pytest.param('Find"GiftCardByCode', id="forbidden-character"),
    ],
)
def test_a_scope_beyond_the_client_is_invalid(scope: str, client: TestClient, registered: Registered) -> None:
    response = request_token(
        client, {**GRANT, "scope": scope}, authorization=basic(POS, registered.secrets[POS])
    )
    assert_refused(response, 400, "invalid_scope")


def test_a_scope_is_judged_only_after_authentication(client: TestClient) -> None:
    response = request_token(
        client, {**GRANT, "scope": "ListGiftCards"}, authorization=basic(POS, "not-the-secret")
    )
    assert_refused(response, 401, "invalid_client")


# --- refused ----------------------------------------------------------------------------------------

Request = Callable[[Registered], dict[str, Any]]


def _right(registered: Registered) -> str:
    return basic(POS, registered.secrets[POS])


def _raw_basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


REFUSED: dict[str, tuple[Request, int, str]] = {
    "missing-grant-type": (lambda r: {"form": {}, "authorization": _right(r)}, 400, "invalid_request"),
    "empty-grant-type": (
        lambda r: {"form": "grant_type=", "authorization": _right(r)},
        400,
        "invalid_request",
    ),
    "password-grant": (
        lambda r: {
            "form": {"grant_type": "password", "username": "u", "password": "p"},
            "authorization": _right(r),
        },
        400,
        "unsupported_grant_type",
    ),
    "authorization-code-grant": (
        lambda r: {"form": {"grant_type": "authorization_code", "code": "x"}, "authorization": _right(r)},
        400,
        "unsupported_grant_type",
    ),
    "text-plain": (
        lambda r: {"form": GRANT, "authorization": _right(r), "content_type": "text/plain"},
        400,
        "invalid_request",
    ),
    "no-content-type": (
        lambda r: {"form": GRANT, "authorization": _right(r), "content_type": None},
        400,
        "invalid_request",
    ),
    "json-body": (
        lambda r: {
            "form": '{"grant_type": "client_credentials"}',
            "authorization": _right(r),
            "content_type": "application/json",
        },
        400,
        "invalid_request",
    ),
    "json-body-labelled-form": (
        lambda r: {"form": '{"grant_type": "client_credentials"}', "authorization": _right(r)},
        400,
        "invalid_request",
    ),
    "latin-1-charset": (
        lambda r: {"form": GRANT, "authorization": _right(r), "content_type": f"{FORM}; charset=ISO-8859-1"},
        400,
        "invalid_request",
    ),
    "not-utf-8": (
        lambda r: {"form": b"grant_type=client_credentials&x=%ff", "authorization": _right(r)},
        400,
        "invalid_request",
    ),
    "repeated-parameter": (
        lambda r: {
            "form": "grant_type=client_credentials&grant_type=client_credentials",
            "authorization": _right(r),
        },
        400,
        "invalid_request",
    ),
    "both-methods": (
        lambda r: {"form": {**GRANT, "client_secret": r.secrets[POS]}, "authorization": _right(r)},
        400,
        "invalid_request",
    ),
    "both-methods-id-in-body": (
        lambda r: {"form": {**GRANT, "client_id": POS}, "authorization": _right(r)},
        400,
        "invalid_request",
    ),
    "basic-not-base64": (lambda r: {"form": GRANT, "authorization": "Basic %%%"}, 400, "invalid_request"),
    "basic-empty": (lambda r: {"form": GRANT, "authorization": "Basic"}, 400, "invalid_request"),
    "basic-without-colon": (
        lambda r: {"form": GRANT, "authorization": _raw_basic(POS.encode())},
        400,
        "invalid_request",
    ),
    "basic-not-utf-8": (
        lambda r: {"form": GRANT, "authorization": _raw_basic(b"pos-1:\xff\xfe")},
        400,
        "invalid_request",
    ),
    "basic-bad-escape": (
        lambda r: {"form": GRANT, "authorization": _raw_basic(b"pos-1:%ff")},
        400,
        "invalid_request",
    ),
    "bearer-scheme": (
        lambda r: {"form": GRANT, "authorization": "Bearer abc.def.ghi"},
        401,
        "invalid_client",
    ),
    "no-client-authentication": (lambda r: {"form": GRANT}, 401, "invalid_client"),
    "unknown-client-basic": (
        lambda r: {"form": GRANT, "authorization": basic("stranger", "s" * 43)},
        401,
        "invalid_client",
    ),
    "unknown-client-post": (
        lambda r: {"form": {**GRANT, "client_id": "stranger", "client_secret": "s"}},
        401,
        "invalid_client",
    ),
    "wrong-secret-basic": (
        lambda r: {"form": GRANT, "authorization": basic(POS, r.secrets[OFFICE])},
        401,
        "invalid_client",
    ),
    "wrong-secret-post": (
        lambda r: {"form": {**GRANT, "client_id": POS, "client_secret": "guess"}},
        401,
        "invalid_client",
    ),
    "empty-secret-basic": (lambda r: {"form": GRANT, "authorization": basic(POS, "")}, 401, "invalid_client"),
    "empty-secret-post": (
        lambda r: {"form": f"grant_type=client_credentials&client_id={POS}&client_secret="},
        401,
        "invalid_client",
    ),
    "no-secret-post": (lambda r: {"form": {**GRANT, "client_id": POS}}, 401, "invalid_client"),
    "other-clients-secret-post": (
        lambda r: {"form": {**GRANT, "client_id": OFFICE, "client_secret": r.secrets[POS]}},
        401,
        "invalid_client",
    ),
    "id-with-colon": (
        lambda r: {"form": GRANT, "authorization": basic(f"{POS}:x", r.secrets[POS])},
        401,
        "invalid_client",
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refused(case: tuple[Request, int, str], client: TestClient, registered: Registered) -> None:
    build, status, error = case
    response = request_token(client, **build(registered))
    assert_refused(response, status, error)
    for secret in registered.secrets.values():
        assert secret not in response.text


def test_an_oversized_body_is_refused(client: TestClient, registered: Registered, settings: Settings) -> None:
    form = {**GRANT, "padding": "x" * settings.max_body_bytes}
    response = request_token(client, form, authorization=basic(POS, registered.secrets[POS]))
    assert_refused(response, 413, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_only_post_is_accepted(method: str, client: TestClient, registered: Registered) -> None:
    # credentials in a query string are never read
    query = urlencode({**GRANT, "client_id": POS, "client_secret": registered.secrets[POS]})
    response = client.request(method, f"/oauth/token?{query}")
    assert_refused(response, 405, "invalid_request")
    assert response.headers["allow"] == "POST"


# --- unknown client and wrong secret look alike -----------------------------------------------------

CREDENTIALS = {
    "basic": lambda client_id, secret: {"form": GRANT, "authorization": basic(client_id, secret)},
    "post": lambda client_id, secret: {"form": {**GRANT, "client_id": client_id, "client_secret": secret}},
}


@pytest.mark.parametrize("credentials", CREDENTIALS.values(), ids=CREDENTIALS.keys())
def test_unknown_client_and_wrong_secret_get_the_same_bytes(
    credentials: Callable[[str, str], dict[str, Any]], client: TestClient
) -> None:
    unknown = request_token(client, **credentials("stranger", "a-guess"))
    wrong = request_token(client, **credentials(POS, "a-guess"))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.headers.multi_items() == wrong.headers.multi_items()


@pytest.mark.timing
def test_unknown_client_and_wrong_secret_take_the_same_time(client: TestClient) -> None:
    # Both verify one argon2 hash (the unknown client a dummy one): the times are of one size.
    def seconds(client_id: str) -> float:
        started = time.perf_counter()
        response = request_token(client, GRANT, authorization=basic(client_id, "a-guess"))
        assert response.status_code == 401
        return time.perf_counter() - started

    # Interleaved, so that a busy machine slows both alike; skipping the hash would give ~0.02.
    seconds("warm-up")
    pairs = [(seconds("stranger"), seconds(POS)) for _ in range(7)]
    unknown = statistics.median(pair[0] for pair in pairs)
    wrong = statistics.median(pair[1] for pair in pairs)
    assert 0.5 < unknown / wrong < 2, (unknown, wrong)


# --- throttled --------------------------------------------------------------------------------------


def test_failures_are_throttled_and_then_even_the_right_secret_waits(
    open_client: Callable[..., TestClient], registered: Registered
) -> None:
    # given a limit of three failed authentications per minute
    client = open_client(client_secret_limits="3/minute")
    # when three wrong secrets are tried, they are refused as such
    for _ in range(3):
        assert_refused(request_token(client, GRANT, authorization=basic(POS, "guess")), 401, "invalid_client")
    # then the fourth attempt is throttled, with the time to wait
    throttled = request_token(client, GRANT, authorization=basic(POS, "guess"))
    assert_refused(throttled, 429, "slow_down")
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    # and while throttled, the right secret is refused too: a throttled guess must not be confirmed
    right = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS]))
    assert_refused(right, 429, "slow_down")


def test_successes_do_not_count(open_client: Callable[..., TestClient], registered: Registered) -> None:
    client = open_client(client_secret_limits="3/minute")
    for _ in range(5):
        response = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS]))
        assert response.status_code == 200


def test_counters_are_per_client_id_and_per_address(
    open_client: Callable[..., TestClient], registered: Registered
) -> None:
    # given an address that has used up the failures allowed against the pos client's id
    attacker = open_client("192.0.2.66", client_secret_limits="3/minute")
    for _ in range(3):
        request_token(attacker, {**GRANT, "client_id": POS, "client_secret": "guess"})
    elsewhere = open_client("192.0.2.10", client_secret_limits="3/minute")
    office, pos = basic(OFFICE, registered.secrets[OFFICE]), basic(POS, registered.secrets[POS])
    # then that address is throttled for any client
    assert_refused(request_token(attacker, GRANT, authorization=office), 429, "slow_down")
    # and the pos client's id is throttled from any address, its own included (the documented cost
    # of counting per client: whoever knows an id can hold that client off for one window)
    assert_refused(request_token(elsewhere, GRANT, authorization=pos), 429, "slow_down")
    # while other clients at other addresses are unaffected
    assert request_token(elsewhere, GRANT, authorization=office).status_code == 200


def test_an_unreachable_counter_store_counts_in_the_process(
    open_client: Callable[..., TestClient], registered: Registered
) -> None:
    client = open_client(redis_url="redis://127.0.0.1:1/0", client_secret_limits="4/minute", workers=2)
    # right secrets are served …
    for _ in range(3):
        right = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS]))
        assert right.status_code == 200
    # … and wrong ones held to this worker's share of the limit (4 // 2 workers)
    answers = [
        request_token(client, {**GRANT, "client_id": POS, "client_secret": "guess"}).status_code
        for _ in range(3)
    ]
    assert answers == [401, 401, 429]


# --- a burst of guesses: reserved before argon2, verified a bounded number at a time ---------------

REDIS = "redis://127.0.0.1:6379/0"
BURST = 40


@pytest.fixture(params=["memory", "redis"])
def counted_in(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings that count attempts in process memory, or in Redis under this test's own prefix."""
    if request.param == "memory":
        yield {}
        return
    prefix = f"t{uuid.uuid4().hex}"
    yield {"redis_url": REDIS, "redis_prefix": prefix}
    with redis.Redis.from_url(REDIS) as store:
        for key in store.scan_iter(f"{prefix}:*"):
            store.delete(key)


class Verifications:
    """The argon2 verifications of client secrets the endpoint ran: outcomes, and most at once."""

    def __init__(self) -> None:
        self.outcomes: list[bool] = []
        self.most_at_once = 0
        self._running = 0
        self._lock = threading.Lock()

    def wrap(self, verify: Callable[[str, str | None], bool]) -> Callable[[str, str | None], bool]:
        def counted(secret: str, secret_hash: str | None) -> bool:
            with self._lock:
                self._running += 1
                self.most_at_once = max(self.most_at_once, self._running)
            try:
                outcome = verify(secret, secret_hash)
            finally:
                with self._lock:
                    self._running -= 1
            self.outcomes.append(outcome)
            return outcome

        return counted


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Verifications:
    counted = Verifications()
    monkeypatch.setattr(oauth, "verify_client_secret", counted.wrap(oauth.verify_client_secret))
    return counted


def all_at_once(count: int, send: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """``send(0..count-1)`` from ``count`` threads released together."""
    start = threading.Barrier(count, timeout=30)

    def released(n: int) -> httpx.Response:
        start.wait()
        return send(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(released, range(count)))


def wrong_secrets(client: TestClient) -> Callable[[int], httpx.Response]:
    return lambda n: request_token(client, GRANT, authorization=basic(POS, f"guess-{n}"))


def test_a_burst_of_wrong_secrets_verifies_no_more_than_the_limit_and_the_right_one_waits(
    open_client_on: Callable[..., TestClient],
    counted_in: dict[str, Any],
    verifications: Verifications,
    registered: Registered,
) -> None:
    # given the default limit of ten failures a minute, and gate room for ten verifications at once
    client = open_client_on(
        "192.0.2.66", client_secret_limits="10/minute", argon2_concurrency=10, **counted_in
    )
    # when forty wrong secrets arrive together from one address
    answers = all_at_once(BURST, wrong_secrets(client))
    # then ten are verified and refused as wrong; the other thirty never reach argon2: throttled, or
    # turned away while every slot was taken
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(401) == 10 and set(statuses) <= {401, 429, 503}
    assert verifications.outcomes == [False] * 10
    # and the right secret after them is throttled too, unverified: the ten misses keep their units
    right = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS]))
    assert_refused(right, 429, "slow_down")
    assert 1 <= int(right.headers["retry-after"]) <= 60
    assert len(verifications.outcomes) == 10


def test_a_right_secret_gives_its_unit_back(
    open_client_on: Callable[..., TestClient],
    counted_in: dict[str, Any],
    verifications: Verifications,
    registered: Registered,
) -> None:
    client = open_client_on(client_secret_limits="3/minute", **counted_in)
    wrong, right = basic(POS, "guess"), basic(POS, registered.secrets[POS])
    # given two failures of the three allowed
    for _ in range(2):
        assert_refused(request_token(client, GRANT, authorization=wrong), 401, "invalid_client")
    # when the right secret is used more often than the limit, one after another
    for _ in range(5):
        assert request_token(client, GRANT, authorization=right).status_code == 200
    # then none of those used a unit: a third failure is still verified, and only then all is spent
    assert_refused(request_token(client, GRANT, authorization=wrong), 401, "invalid_client")
    assert_refused(request_token(client, GRANT, authorization=right), 429, "slow_down")
    assert verifications.outcomes == [False, False, True, True, True, True, True, False]


def test_a_burst_runs_no_more_verifications_at_once_than_the_gate_has_slots(
    open_client: Callable[..., TestClient], verifications: Verifications
) -> None:
    # given a gate of two slots, and a limit that lets every guess through to it
    client = open_client("192.0.2.66", client_secret_limits="1000/minute", argon2_concurrency=2)
    # when forty wrong secrets arrive together
    answers = all_at_once(BURST, wrong_secrets(client))
    # then at most two verify at once; the rest are turned away at once, told when to retry
    assert verifications.most_at_once <= 2
    busy = [answer for answer in answers if answer.status_code == 503]
    assert len(busy) + len(verifications.outcomes) == BURST and busy
    for answer in busy:
        assert_refused(answer, 503, "temporarily_unavailable")
        assert answer.headers["retry-after"] == "1"


def test_a_full_gate_answers_503_with_retry_after_and_keeps_no_unit(
    open_client: Callable[..., TestClient], registered: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given one argon2 slot, held by a wrong secret whose verification has not finished
    client = open_client(client_secret_limits="2/minute", argon2_concurrency=1)
    inside, release = threading.Event(), threading.Event()
    verify = oauth.verify_client_secret

    def held(secret: str, secret_hash: str | None) -> bool:
        if secret == "held":
            inside.set()
            release.wait(30)
        return verify(secret, secret_hash)

    monkeypatch.setattr(oauth, "verify_client_secret", held)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(request_token, client, GRANT, authorization=basic(POS, "held"))
        assert inside.wait(30)
        # when another authentication arrives, the right secret at that
        busy = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS]))
        release.set()
        assert_refused(first.result(timeout=30), 401, "invalid_client")
    # then it is turned away with when to retry, in the endpoint's error shape
    assert_refused(busy, 503, "temporarily_unavailable")
    assert busy.headers["retry-after"] == "1"
    # and, as nothing was verified, it gave its unit back: one more failure is verified, then no more
    assert_refused(request_token(client, GRANT, authorization=basic(POS, "guess")), 401, "invalid_client")
    assert_refused(request_token(client, GRANT, authorization=basic(POS, "guess")), 429, "slow_down")


# --- secrets stay secret ----------------------------------------------------------------------------


def test_no_secret_or_token_reaches_the_log(
    client: TestClient, registered: Registered, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = registered.secrets[POS]
    issued = [
        request_token(client, GRANT, authorization=basic(POS, secret)).json()["access_token"],
        request_token(client, {**GRANT, "client_id": POS, "client_secret": secret}).json()["access_token"],
    ]
    request_token(client, GRANT, authorization=basic(POS, "wrong-" + secret))
    request_token(client, {**GRANT, "client_id": "stranger", "client_secret": "stranger-" + secret})
    assert "token issued to client pos-1" in caplog.text  # the log is really captured
    for needle in [secret, basic(POS, secret).split()[1], *issued]:
        assert needle not in caplog.text


# --- configuration ----------------------------------------------------------------------------------


def test_public_key_deployments_have_no_token_endpoint(
    database_url: str, tmp_path: Path, registered: Registered, caplog: pytest.LogCaptureFixture
) -> None:
    settings = public_key_settings("rsa-file", make_keys(), tmp_path, None, database_url)
    settings = settings.model_copy(update={"permissions_file": registered.path})
    services = build_services(settings)
    try:
        with TestClient(create_app(settings, services)) as client:
            response = request_token(client, GRANT, authorization=basic(POS, registered.secrets[POS]))
    finally:
        services.engine.dispose()
    assert response.status_code == 404
    assert "the token endpoint is off" in caplog.text


def test_a_client_hash_that_is_not_argon2_stops_start_up(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "permissions.yaml"
    text = (ROOT / "permissions.yaml").read_text()
    kiosk = "clients:\n  - {id: kiosk, secret_hash: plain, roles: [pos]}"
    path.write_text(text.replace("clients: []", kiosk))
    load_policy(path)  # the policy file itself is fine
    services = build_services(make_settings(database_url, tmp_path, permissions_file=path))
    try:
        with pytest.raises(ConfigurationError, match="kiosk"):
            create_app(services.settings, services)
    finally:
        services.engine.dispose()
