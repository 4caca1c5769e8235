"""The `stores` query: the stores a caller acts on, from its token's stores claim or AllStores; a claim
naming a store the server does not know is FORBIDDEN naming the claim."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from app.auth.tokens import issue_token
from app.config import Settings
from app.services import Services
from tests.conftest import error_codes, gql

STORES = "query { stores { id name createdAt } }"
STORES_AND_TYPENAME = "query { __typename stores { id } }"

Mint = Callable[..., str]


@pytest.fixture
def mint_for(settings: Settings, services: Services) -> Mint:
    """``mint_for(stores, permissions=[...])`` → a token whose stores claim is ``stores`` (None: none)."""

    def _mint(stores: list[str] | None, permissions: tuple[str, ...] = ("ListGiftCards",)) -> str:
        return issue_token(settings, services.policy, "office", permissions=permissions, stores=stores)

    return _mint


@pytest.fixture
def three_stores(services: Services) -> None:
    """The default store, and two more."""
    services.stores.add("north", "North Shop")
    services.stores.add("south", None)


def ids(body: dict[str, object]) -> list[str]:
    data = body["data"]
    assert isinstance(data, dict)
    return [store["id"] for store in data["stores"]]


def test_a_token_without_a_claim_sees_the_default_store(
    client: TestClient, mint_for: Mint, three_stores: None
) -> None:
    # when a token without a stores claim asks for its stores
    body = gql(client, STORES, token=mint_for(None))
    # then it sees only the default store, the one the first migration made
    assert "errors" not in body
    (store,) = body["data"]["stores"]
    assert store["id"] == "default"
    assert store["name"] is None
    created = datetime.fromisoformat(store["createdAt"])
    assert created.tzinfo is not None and created <= datetime.now(UTC) + timedelta(seconds=5)


def test_a_claim_sees_its_own_stores_by_id_with_their_names(
    client: TestClient, mint_for: Mint, three_stores: None
) -> None:
    # given stores default, north and south, and a token naming south and north
    body = gql(client, STORES, token=mint_for(["south", "north"]))
    # then it sees those two, by id, and not the default store
    assert "errors" not in body
    assert ids(body) == ["north", "south"]
    assert [store["name"] for store in body["data"]["stores"]] == ["North Shop", None]


def test_an_empty_claim_sees_no_store(client: TestClient, mint_for: Mint, three_stores: None) -> None:
    body = gql(client, STORES, token=mint_for([]))
    assert "errors" not in body
    assert body["data"]["stores"] == []


def test_all_stores_sees_every_store_whatever_the_claim(
    client: TestClient, mint_for: Mint, three_stores: None
) -> None:
    # given an operator with AllStores, with and without a claim
    for stores in (None, ["north"], []):
        token = mint_for(stores, permissions=("ListGiftCards", "AllStores"))
        # when it asks for the stores, then it sees all three
        body = gql(client, STORES, token=token)
        assert "errors" not in body
        assert ids(body) == ["default", "north", "south"]


def test_all_stores_with_an_unknown_store_in_the_claim_still_sees_every_store(
    client: TestClient, mint_for: Mint, three_stores: None
) -> None:
    token = mint_for(["nowhere"], permissions=("ListGiftCards", "AllStores"))
    assert ids(gql(client, STORES, token=token)) == ["default", "north", "south"]


@pytest.mark.parametrize("claim", [["nowhere"], ["north", "nowhere"]])
def test_a_claim_naming_an_unknown_store_is_forbidden_naming_the_claim(
    client: TestClient, mint_for: Mint, three_stores: None, claim: list[str]
) -> None:
    # when a token naming a store the server does not know asks for its stores
    body = gql(client, STORES_AND_TYPENAME, token=mint_for(claim))
    # then the field is null with FORBIDDEN naming the stores claim and the store; the rest answers
    assert body["data"] == {"__typename": "Query", "stores": None}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["field"] == "stores"
    assert "nowhere" in error["message"] and "stores claim" in error["message"]


def test_a_store_added_later_is_known_to_a_running_server(
    client: TestClient, services: Services, mint_for: Mint, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a token naming a store that does not exist yet: refused
    token = mint_for(["east"])
    assert error_codes(gql(client, STORES, token=token)) == ["FORBIDDEN"]
    # when another process adds it (a directory of its own) and the cache may be read again
    from app.store.stores import StoreDirectory

    StoreDirectory(services.engine).add("east", "East")
    monkeypatch.setattr("app.store.stores._RELOAD_SECONDS", 0.0)
    # then the same token now sees it
    assert ids(gql(client, STORES, token=token)) == ["east"]


@pytest.mark.parametrize(
    ("permissions", "code"),
    [
        pytest.param(("FindGiftCardByCode",), "FORBIDDEN", id="without-list-giftcards"),
        pytest.param(("AllStores",), "FORBIDDEN", id="all-stores-alone"),
    ],
)
def test_the_query_needs_list_giftcards(
    client: TestClient, mint_for: Mint, three_stores: None, permissions: tuple[str, ...], code: str
) -> None:
    body = gql(client, STORES, token=mint_for(None, permissions=permissions))
    assert body["data"] == {"stores": None}
    assert error_codes(body) == [code]
    assert "ListGiftCards" in body["errors"][0]["message"]


def test_an_anonymous_caller_is_unauthenticated(client: TestClient, three_stores: None) -> None:
    body = gql(client, STORES)
    assert body["data"] == {"stores": None}
    assert error_codes(body) == ["UNAUTHENTICATED"]
