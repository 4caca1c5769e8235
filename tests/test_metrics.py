"""``/metrics`` (app.metrics, app.metrics_route): what is counted and under which labels, the
outstanding balances, the pool, who may scrape; and a real two-worker server adding up its workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from app import db
from app.config import Settings, load_settings
from app.enums import CodeType
from app.errors import ConfigurationError, RateLimitedError
from app.http import create_app
from app.metrics import BalanceCollector, RouteNames, forget_dead_workers
from app.metrics_route import is_loopback, refuse_scrape
from app.server import METRICS_DIR_VARIABLE, metrics_directory
from app.services import Services
from tests.conftest import error_codes, fund, gql
from tests.test_concurrency import giftcards, running_server, server_env
from tests.test_config import PRODUCTION

LOOKUP = "query L($c: String!) { giftcard(code: $c) { results { id } } }"
TRANS = "mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id } }"
ADD = """mutation A($g: GiftCardAddInput!, $key: String) {
  giftcardAdd(giftcard: $g, idempotencyKey: $key) { id } }"""
CODE, PIN = "METRICSPHYS01", "2468"
LOOPBACK = ("127.0.0.1", 50000)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Each sample of a scrape by its name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def local(settings: Settings, services: Services) -> Iterator[TestClient]:
    """The app, called from the loopback interface (TestClient's own client is "testclient")."""
    with TestClient(create_app(settings, services), client=LOOPBACK) as test_client:
        yield test_client


def scrape(client: TestClient) -> tuple[Samples, str]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text), response.text


# --- requests and root fields ---------------------------------------------------------------------


def test_requests_are_counted_by_route_and_fields_by_schema_name_never_by_what_the_client_wrote(local):
    # given a query under an alias, one naming a field the schema lacks, and a path no route serves
    assert (
        local.post("/graphql", json={"query": "query GC55501 { codeGC123: __typename }"}).status_code == 200
    )
    local.post("/graphql", json={"query": "{ GC4928833012345 }"})
    assert local.get("/GC77700011/balance").status_code == 404
    # when the metrics are scraped
    scraped, text = scrape(local)
    # then each request counts under its route and outcome, the field under its schema name
    assert value(scraped, "giftcards_http_requests_total", route="/graphql", code="OK") == 1
    assert (
        value(scraped, "giftcards_http_requests_total", route="/graphql", code="GRAPHQL_VALIDATION_FAILED")
        == 1
    )
    assert value(scraped, "giftcards_http_requests_total", route="other", code="NOT_FOUND") == 1
    assert value(scraped, "giftcards_graphql_root_fields_total", field="__typename", code="OK") == 1
    assert (
        value(scraped, "giftcards_http_request_duration_seconds_count", route="/graphql", operation="query")
        == 1
    )
    assert (
        value(scraped, "giftcards_http_request_duration_seconds_count", route="/graphql", operation="none")
        == 1
    )
    # and nothing the client chose shows: no alias, operation name, unknown field or path
    for chosen in ("codeGC123", "GC55501", "GC4928833012345", "GC77700011"):
        assert chosen not in text


def test_each_root_field_counts_with_its_own_outcome(local, mint):
    token = mint(permissions=["FindGiftCardByCode"], sub="pos-7")
    query = '{ __typename giftcard(id: "1") { limitedByPermission } }'
    local.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"})
    scraped, _ = scrape(local)
    assert value(scraped, "giftcards_http_requests_total", route="/graphql", code="FORBIDDEN") == 1
    assert value(scraped, "giftcards_graphql_root_fields_total", field="__typename", code="OK") == 1
    assert value(scraped, "giftcards_graphql_root_fields_total", field="giftcard", code="FORBIDDEN") == 1


def test_routes_are_labelled_as_written_and_unknown_paths_as_other():
    names = RouteNames(["/graphql", "/readyz", "/graphiql/static/{name}"])
    assert names("/graphql") == "/graphql"
    assert names("/graphiql/static/graphiql.min.js") == "/graphiql/static/{name}"
    assert names("/graphiql/static/a/b") == "other"
    assert names("/graphql/extra") == names("/GC4928833012345") == "other"


# --- attempt budgets, PIN lockouts, replays ----------------------------------------------------


@pytest.fixture
def card(seed, services):
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    return card_id


def _without_budget(mint, services, role):
    """The role's permissions without the role: its budget is GIFTCARDS_CODE_ATTEMPT_LIMITS."""
    return mint(permissions=sorted(services.policy.roles[role]), sub=role)


@pytest.mark.settings(code_attempt_limits="3/minute")
def test_a_lookup_refused_by_the_attempt_budget_is_counted(local, mint, services):
    storefront = _without_budget(mint, services, "storefront")
    for n in range(3):
        assert error_codes(gql(local, LOOKUP, {"c": f"NOSUCHCODE{n:04d}"}, token=storefront)) == []
    assert value(scrape(local)[0], "giftcards_attempt_budget_refusals_total", budget="code") == 0
    assert error_codes(gql(local, LOOKUP, {"c": "NOSUCHCODE0009"}, token=storefront)) == ["RATE_LIMITED"]
    scraped, _ = scrape(local)
    assert value(scraped, "giftcards_attempt_budget_refusals_total", budget="code") == 1
    assert value(scraped, "giftcards_graphql_root_fields_total", field="giftcard", code="RATE_LIMITED") == 1


@pytest.mark.settings(client_secret_limits="2/minute")
def test_a_client_secret_refused_by_its_budget_is_counted_apart(local, services):
    # (the token endpoint reserves a unit per client id and address before it checks a secret)
    for _ in range(2):
        services.secret_throttle.reserve([("client", "shop-backend")])
    with pytest.raises(RateLimitedError):
        services.secret_throttle.reserve([("client", "shop-backend")])
    scraped, text = scrape(local)
    assert value(scraped, "giftcards_attempt_budget_refusals_total", budget="client-secret") == 1
    assert value(scraped, "giftcards_attempt_budget_refusals_total", budget="code") == 0
    assert "shop-backend" not in text


@pytest.mark.settings(pin_max_failures=2)
def test_the_wrong_pin_that_locks_a_code_is_counted_once(local, mint, services, card):
    pos = _without_budget(mint, services, "pos")
    trans = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": CODE, "pin": "0000"}
    gql(local, TRANS, {"trans": trans}, token=pos)
    assert value(scrape(local)[0], "giftcards_pin_lockouts_total") == 0
    gql(local, TRANS, {"trans": trans}, token=pos)  # the second wrong PIN locks the code
    assert value(scrape(local)[0], "giftcards_pin_lockouts_total") == 1
    gql(local, TRANS, {"trans": {**trans, "pin": PIN}}, token=pos)  # refused while locked: no new lockout
    assert value(scrape(local)[0], "giftcards_pin_lockouts_total") == 1


def test_an_idempotent_replay_is_counted(local, mint):
    admin = mint(roles=["admin"], sub="ops")
    first = gql(local, ADD, {"g": {"physicalCode": "METRICSADD001"}, "key": "metrics-key-1"}, token=admin)
    assert error_codes(first) == []
    assert value(scrape(local)[0], "giftcards_idempotent_replays_total") == 0
    assert (
        gql(local, ADD, {"g": {"physicalCode": "METRICSADD001"}, "key": "metrics-key-1"}, token=admin)
        == first
    )
    scraped, text = scrape(local)
    assert value(scraped, "giftcards_idempotent_replays_total") == 1
    assert "metrics-key-1" not in text


@pytest.mark.settings(batch_wait_ms=2, one_statement_debits=False)  # PIN debits on the full path
def test_group_commits_are_counted_by_size(local, mint, services, card):
    pos = _without_budget(mint, services, "pos")
    trans = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": CODE, "pin": PIN}
    assert value(scrape(local)[0], "giftcards_transaction_batch_size_count") == 0
    for _ in range(2):
        assert error_codes(gql(local, TRANS, {"trans": trans}, token=pos)) == []
    scraped = scrape(local)[0]
    assert value(scraped, "giftcards_transaction_batch_size_count") == 2  # one after the other: two batches
    assert value(scraped, "giftcards_transaction_batch_size_sum") == 2
    assert value(scraped, "giftcards_transaction_batch_size_bucket", le="1.0") == 2


# --- balances and the pool -------------------------------------------------------------------------


def test_the_outstanding_balance_is_summed_per_currency_in_minor_units(local, seed):
    seed({CodeType.PHYSICAL: "METRICSUSD001"}, balance=2500)
    seed({CodeType.PHYSICAL: "METRICSUSD002"}, balance=750)
    seed({CodeType.PHYSICAL: "METRICSEUR001"}, balance=1999, currency="EUR")
    scraped, text = scrape(local)
    assert value(scraped, "giftcards_outstanding_balance_minor_units", currency="USD") == 3250
    assert value(scraped, "giftcards_outstanding_balance_minor_units", currency="EUR") == 1999
    assert "METRICSUSD001" not in text


class _Reads:
    def __init__(self) -> None:
        self.count, self.totals, self.fail = 0, {"USD": 100}, False

    def __call__(self) -> dict[str, int]:
        self.count += 1
        if self.fail:
            raise RuntimeError("database unreachable")
        return dict(self.totals)


def _collected(collector: BalanceCollector) -> dict[str, float]:
    return {
        sample.labels["currency"]: sample.value for family in collector.collect() for sample in family.samples
    }


def test_balances_are_read_at_most_once_per_cache_period():
    reads, now = _Reads(), [1000.0]
    collector = BalanceCollector(reads, clock=lambda: now[0], max_age=15)
    assert _collected(collector) == {"USD": 100}
    reads.totals = {"USD": 300}
    now[0] += 14.9
    assert _collected(collector) == {"USD": 100} and reads.count == 1
    now[0] += 0.1
    assert _collected(collector) == {"USD": 300} and reads.count == 2


def test_a_failed_balance_read_leaves_the_gauge_out_not_the_scrape():
    reads, now = _Reads(), [0.0]
    reads.fail = True
    collector = BalanceCollector(reads, clock=lambda: now[0], max_age=15)
    assert _collected(collector) == {}
    assert _collected(collector) == {} and reads.count == 1  # not retried at every scrape
    reads.fail, now[0] = False, 15.0
    assert _collected(collector) == {"USD": 100}


def test_the_pool_gauge_follows_connections_taken_and_given_back(local, services):
    kept = db.WORKER_THREADS if services.engine.dialect.name == "sqlite" else services.settings.db_pool_size
    assert value(scrape(local)[0], "giftcards_db_pool_size") == kept
    connection = services.engine.connect()
    try:
        assert value(scrape(local)[0], "giftcards_db_pool_connections_in_use") == 1
    finally:
        connection.close()
    assert value(scrape(local)[0], "giftcards_db_pool_connections_in_use") == 0


# --- who may scrape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_callers_may_scrape_without_a_token(host):
    assert is_loopback(host)
    assert refuse_scrape(host, None, None) is None
    assert refuse_scrape(host, "Bearer wrong", "the-token") is None


@pytest.mark.parametrize(
    "host", ["10.0.0.7", "192.168.1.1", "::ffff:10.0.0.7", "2001:db8::1", "testclient", None]
)
def test_other_callers_need_the_token(host):
    assert not is_loopback(host)
    refused = refuse_scrape(host, "Bearer the-token", None)
    assert refused is not None and refused.status_code == 403  # no token configured: no way in
    missing = refuse_scrape(host, None, "the-token")
    assert missing is not None and missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="metrics"'
    wrong = refuse_scrape(host, "Bearer the-token-not", "the-token")
    assert wrong is not None and wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer realm="metrics", error="invalid_token"'
    assert refuse_scrape(host, "Basic the-token", "the-token") is not None
    assert refuse_scrape(host, "Bearer the-token", "the-token") is None
    assert refuse_scrape(host, "bearer  the-token ", "the-token") is None


def test_a_remote_caller_is_refused_in_the_api_error_shape(client):
    response = client.get("/metrics")
    assert response.status_code == 403
    assert error_codes(response.json()) == ["FORBIDDEN"]
    assert "giftcards_" not in response.text


@pytest.mark.settings(metrics_token="scrape-token-for-tests")
def test_a_remote_caller_with_the_token_may_scrape(client):
    refused = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert refused.status_code == 401 and error_codes(refused.json()) == ["UNAUTHENTICATED"]
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-for-tests"})
    assert response.status_code == 200
    assert (
        value(
            samples(response.text), "giftcards_http_requests_total", route="/metrics", code="UNAUTHENTICATED"
        )
        == 1
    )


def test_production_refuses_a_guessable_metrics_token(tmp_path):
    environ = {**PRODUCTION, "GIFTCARDS_STATE_DIR": str(tmp_path)}
    with pytest.raises(ConfigurationError, match="GIFTCARDS_METRICS_TOKEN is too guessable"):
        load_settings({**environ, "GIFTCARDS_METRICS_TOKEN": "metrics-metrics-metrics"})
    good = "h1V0c8m2yKzQe4tqN5aXJw7pLr3sUd6fGb9ZoWiEkTnYvC0x"
    settings = load_settings({**environ, "GIFTCARDS_METRICS_TOKEN": good})
    assert settings.metrics_token is not None and settings.metrics_token.get_secret_value() == good


# --- several workers: the shared directory ---------------------------------------------------------


def test_serve_gives_several_workers_a_private_directory_and_removes_it():
    environ: dict[str, str] = {}
    with metrics_directory(environ, workers=2):
        directory = Path(environ[METRICS_DIR_VARIABLE])
        assert directory.is_dir() and directory.stat().st_mode & 0o077 == 0
    assert METRICS_DIR_VARIABLE not in environ and not directory.exists()
    with metrics_directory(environ, workers=1):
        assert METRICS_DIR_VARIABLE not in environ  # one process keeps its metrics in memory


def test_serve_empties_the_operators_directory_of_an_earlier_run(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("kept")
    with metrics_directory({METRICS_DIR_VARIABLE: str(tmp_path)}, workers=4):
        assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    with metrics_directory({METRICS_DIR_VARIABLE: str(tmp_path / "new")}, workers=4):
        assert (tmp_path / "new").is_dir()


def test_a_dead_workers_live_gauges_are_forgotten(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    files = [f"gauge_livesum_{dead_pid}.db", f"counter_{dead_pid}.db", f"gauge_livesum_{os.getpid()}.db"]
    for name in files:
        (tmp_path / name).write_bytes(b"")
    forget_dead_workers(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(files[1:])


# --- the real server, two workers ----------------------------------------------------------------

REQUESTS = 60


def _one_request(url: str, n: int) -> int:
    """A query on a connection of its own, so that the kernel hands connections to both workers."""
    with httpx.Client(base_url=url, timeout=30) as fresh:
        return fresh.post("/graphql", json={"query": f"query Probe{n} {{ __typename }}"}).status_code


@pytest.mark.server
def test_a_scrape_of_two_workers_adds_up_both(database_url, tmp_path):
    # given the real server with two workers, on the demo data
    env = server_env(database_url, tmp_path)
    giftcards(env, "demo-data")
    with running_server(env, tmp_path / "server.log") as server:
        # when 60 queries arrive, each on its own connection, some at once
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(lambda n: _one_request(server.url, n), range(REQUESTS)))
        assert statuses == [200] * REQUESTS
        # then any scrape counts them all, whichever worker serves it and whichever answered them
        with httpx.Client(base_url=server.url, timeout=30) as scraper:
            scraped = _scrape_until_counted(scraper)
    assert value(scraped, "giftcards_http_requests_total", route="/graphql", code="OK") == REQUESTS
    assert value(scraped, "giftcards_graphql_root_fields_total", field="__typename", code="OK") == REQUESTS
    count = "giftcards_http_request_duration_seconds_count"
    assert value(scraped, count, route="/graphql", operation="query") == REQUESTS
    # and both workers' pools are in the sum (8 PostgreSQL connections each, or one per thread to SQLite)
    kept = (
        db.WORKER_THREADS
        if database_url.startswith("sqlite")
        else Settings.model_fields["db_pool_size"].default
    )
    assert value(scraped, "giftcards_db_pool_size") == 2 * kept
    # and the outstanding balance is the demo cards' (25.00 + 10.00 + 50.00 + 7.50 + 0.00 dollars)
    assert value(scraped, "giftcards_outstanding_balance_minor_units", currency="USD") == 9250


def _scrape_until_counted(scraper: httpx.Client) -> Samples:
    """A request is counted just after its answer is sent: scrape again until the last are in."""
    for _ in range(50):
        response = scraper.get("/metrics")
        assert response.status_code == 200, response.text
        scraped = samples(response.text)
        counted = value(scraped, "giftcards_http_requests_total", route="/graphql", code="OK")
        assert counted <= REQUESTS
        if counted == REQUESTS:
            return scraped
        time.sleep(0.1)
    raise AssertionError(f"{counted} of {REQUESTS} requests counted")
