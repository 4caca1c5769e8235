"""POST /oauth/token for clients whose permissions.yaml entry names stores: the issued token carries
them as its stores claim, and the server acts on them (on SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.auth.clients import add_client
from app.auth.tokens import issue_token
from app.config import Settings
from app.services import Services
from tests.conftest import ROOT, error_codes, gql, make_settings
from tests.test_oauth_token import GRANT, Registered, basic, claims_of, request_token

STORES = "query { stores { id } }"
NORTH, NOWHERE, GHOST, PLAIN = "north-office", "nowhere-office", "ghost-office", "plain-office"


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Back-office clients naming stores north and south, no store, an unknown store, and none."""
    path = tmp_path_factory.mktemp("policy") / "permissions.yaml"
    shutil.copy(ROOT / "permissions.yaml", path)
    clients = [
        add_client(path, NORTH, ["backoffice"], stores=["south", "north"]),
        add_client(path, NOWHERE, ["backoffice"], stores=[]),
        add_client(path, GHOST, ["backoffice"], stores=["ghost"]),
        add_client(path, PLAIN, ["backoffice"]),
    ]
    return Registered(path, {client.id: client.secret for client in clients})


@pytest.fixture
def settings(database_url: str, tmp_path: Path, registered: Registered) -> Settings:
    return make_settings(
        database_url, tmp_path, permissions_file=registered.path, client_secret_limits="1000/minute"
    )


@pytest.fixture
def stores(services: Services) -> None:
    services.stores.add("north", None)
    services.stores.add("south", None)
    services.stores.add("east", None)


def token_for(client: TestClient, registered: Registered, client_id: str) -> str:
    response = request_token(client, GRANT, authorization=basic(client_id, registered.secrets[client_id]))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize(
    ("client_id", "claim"),
    [
        pytest.param(NORTH, ["south", "north"], id="stores-named"),
        pytest.param(NOWHERE, [], id="empty-list"),
        pytest.param(GHOST, ["ghost"], id="unknown-store"),
    ],
)
def test_the_token_carries_the_entrys_stores(
    client: TestClient, registered: Registered, services: Services, client_id: str, claim: list[str]
) -> None:
    # when a client whose entry names stores gets a token
    token = token_for(client, registered, client_id)
    # then the token's stores claim is exactly the entry's, and the verifier reads it
    assert claims_of(token)["stores"] == claim
    assert services.tokens.verify(token).stores == frozenset(claim)


def test_an_entry_without_stores_issues_no_claim(
    client: TestClient, registered: Registered, services: Services
) -> None:
    token = token_for(client, registered, PLAIN)
    assert "stores" not in claims_of(token)
    assert services.tokens.verify(token).stores == frozenset({"default"})


def test_the_server_acts_on_the_clients_stores(
    client: TestClient, registered: Registered, stores: None
) -> None:
    # given stores default, north, south and east
    # then each client's token sees its own stores only
    seen = {}
    for client_id in (NORTH, NOWHERE, PLAIN):
        body = gql(client, STORES, token=token_for(client, registered, client_id))
        assert "errors" not in body
        seen[client_id] = [store["id"] for store in body["data"]["stores"]]
    assert seen == {NORTH: ["north", "south"], NOWHERE: [], PLAIN: ["default"]}


def test_a_client_naming_an_unknown_store_is_forbidden_naming_the_claim(
    client: TestClient, registered: Registered, stores: None
) -> None:
    body = gql(client, STORES, token=token_for(client, registered, GHOST))
    assert body["data"] == {"stores": None}
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["field"] == "stores"
    assert "ghost" in body["errors"][0]["message"]


def test_a_token_for_a_client_without_a_claim_acts_on_the_entrys_stores(
    settings: Settings, services: Services
) -> None:
    # given tokens for the clients' subjects that carry no stores claim (issued elsewhere)
    north = issue_token(settings, services.policy, NORTH, permissions=["ListGiftCards"])
    plain = issue_token(settings, services.policy, PLAIN, permissions=["ListGiftCards"])
    stranger = issue_token(settings, services.policy, "someone", permissions=["ListGiftCards"])
    # then a client's entry stands in for the claim; anyone else acts on the default store
    assert services.tokens.verify(north).stores == frozenset({"north", "south"})
    assert services.tokens.verify(plain).stores == frozenset({"default"})
    assert services.tokens.verify(stranger).stores == frozenset({"default"})
    # and a claim, when present, wins over the entry
    claimed = issue_token(settings, services.policy, NORTH, permissions=["ListGiftCards"], stores=["east"])
    assert services.tokens.verify(claimed).stores == frozenset({"east"})
