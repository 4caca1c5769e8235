"""The `giftcards` listing's code filter (the card holding a live code, for callers with
ListGiftCards and the type's Use… permission) and Square's type filter, hasPhysicalCode."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update
from sqlmodel import col
from starlette.testclient import TestClient

from app.enums import CodeType
from app.http import create_app
from app.logs import request_log
from app.models import GiftCard
from tests.conftest import add_store, error_codes, gql, transaction

LIST = """query List($first: Int, $last: Int, $orderBy: GiftCardOrder, $filter: GiftCardFilter) {
  giftcards(first: $first, last: $last, orderBy: $orderBy, filter: $filter) {
    edges { node { id } }
    pageInfo { hasNextPage hasPreviousPage }
  } }"""

PHYSICAL_ONLY = ["ListGiftCards", "UsePhysicalGiftCardCodes"]


def _ids(client, token, **variables) -> list[int]:
    body = gql(client, LIST, variables, token=token)
    assert "errors" not in body, body
    return [int(edge["node"]["id"]) for edge in body["data"]["giftcards"]["edges"]]


def _refused(client, token, **variables) -> tuple[str, str | None]:
    body = gql(client, LIST, variables, token=token)
    assert body["data"] == {"giftcards": None}
    (code,) = error_codes(body)
    return code, body["errors"][0]["extensions"].get("field")


def _set_state(services, card_id: int, state: str) -> None:
    with transaction(services) as session:
        session.execute(update(GiftCard).where(col(GiftCard.id) == card_id).values(state=state))


@pytest.fixture
def lister(mint):
    return mint(roles=["backoffice"])


# --- code --------------------------------------------------------------------------------------


def test_the_code_filter_lists_the_card_holding_the_live_code(client, lister, seed):
    # given cards with physical and external codes, one of them revoked
    wanted = seed({CodeType.PHYSICAL: "WANT00000001", CodeType.EXTERNAL: "EXTN00000001"})
    other = seed({CodeType.PHYSICAL: "OTHR00000002"})
    revoked = seed(
        {CodeType.PHYSICAL: "GONE00000003", CodeType.EXTERNAL: "EXTN00000003"}, revoked={CodeType.PHYSICAL}
    )
    # then a code finds its card, typed or not, spelt in any case and with dashes
    assert _ids(client, lister, filter={"code": "WANT00000001", "codeType": "PHYSICAL"}) == [wanted]
    assert _ids(client, lister, filter={"code": "want-0000-0001"}) == [wanted]
    assert _ids(client, lister, filter={"code": "EXTN00000001", "codeType": "EXTERNAL"}) == [wanted]
    assert _ids(client, lister, filter={"code": "EXTN00000003"}, last=5, orderBy="CREATED_DESC") == [revoked]
    # under another type, revoked or unknown: an empty page, not an error
    assert _ids(client, lister, filter={"code": "WANT00000001", "codeType": "EXTERNAL"}) == []
    assert _ids(client, lister, filter={"code": "GONE00000003"}) == []
    assert _ids(client, lister, filter={"code": "NOPE00000009"}) == []
    # combined with the other filters (AND)
    assert _ids(client, lister, filter={"code": "OTHR00000002", "state": "PENDING"}) == [other]
    assert _ids(client, lister, filter={"code": "OTHR00000002", "state": "ACTIVE"}) == []
    assert _ids(client, lister, filter={"code": "OTHR00000002", "hasPhysicalCode": False}) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_filtered_code_is_never_logged(settings, services, mint, seed, caplog):
    caplog.set_level(logging.DEBUG)
    seed({CodeType.PHYSICAL: "LOGD00000001"})
    seed({CodeType.EXTERNAL: "LOGD00000001"})
    token = mint(permissions=["ListGiftCards", "UsePhysicalGiftCardCodes", "UseExternalGiftCardCodes"])
    with TestClient(create_app(settings, services, sinks=[request_log(settings)])) as client:
        # found, refused as ambiguous, refused as malformed, and not found
        assert len(_ids(client, token, filter={"code": "LOGD00000001", "codeType": "PHYSICAL"})) == 1
        assert _refused(client, token, filter={"code": "logd-0000-0001"}) == ("BAD_USER_INPUT", "codeType")
        assert _refused(client, token, filter={"code": "LOGD0000000!"}) == ("BAD_USER_INPUT", "code")
        assert _ids(client, token, filter={"code": "LOGX00000009"}) == []
    requests = [record.getMessage() for record in caplog.records if record.name == "app.requests"]
    assert len(requests) == 4
    assert "LOGD" not in caplog.text.upper() and "LOGX" not in caplog.text.upper()


def test_a_code_under_two_types_needs_its_type(client, mint, seed):
    physical = seed({CodeType.PHYSICAL: "SAME00000001"})
    external = seed({CodeType.EXTERNAL: "SAME00000001"})
    both = mint(permissions=["ListGiftCards", "UsePhysicalGiftCardCodes", "UseExternalGiftCardCodes"])
    assert _refused(client, both, filter={"code": "SAME00000001"}) == ("BAD_USER_INPUT", "codeType")
    assert _ids(client, both, filter={"code": "SAME00000001", "codeType": "EXTERNAL"}) == [external]
    assert _ids(client, both, filter={"code": "SAME00000001", "codeType": "PHYSICAL"}) == [physical]
    # untyped, only the types the token may use are searched
    assert _ids(client, mint(permissions=PHYSICAL_ONLY), filter={"code": "SAME00000001"}) == [physical]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_code_filter_needs_the_types_use_permission(client, mint, seed):
    seed({CodeType.EXTERNAL: "EXTN00000001"})
    physical_only = mint(permissions=PHYSICAL_ONLY)
    assert _refused(client, physical_only, filter={"code": "EXTN00000001", "codeType": "EXTERNAL"}) == (
        "FORBIDDEN",
        "codeType",
    )
    no_type = mint(permissions=["ListGiftCards"])
    assert _refused(client, no_type, filter={"code": "EXTN00000001"}) == ("FORBIDDEN", "code")
    # ListGiftCards comes first, as for every listing
    finder = mint(permissions=["FindGiftCardByCode", "UseExternalGiftCardCodes"])
    assert _refused(client, finder, filter={"code": "EXTN00000001"}) == ("FORBIDDEN", None)
    for code in ("", "ab", "X" * 65, "ÄÖÜ12345"):
        assert _refused(client, physical_only, filter={"code": code}) == ("BAD_USER_INPUT", "code")


def test_a_card_of_another_store_is_never_found_by_code(client, mint, seed, services):
    add_store(services, "north")
    north = seed({CodeType.PHYSICAL: "NRTH00000001"}, store_id="north")
    home = seed({CodeType.PHYSICAL: "SHRD00000002"})
    north_shared = seed({CodeType.PHYSICAL: "SHRD00000002"}, store_id="north")
    default_store = mint(permissions=PHYSICAL_ONLY)
    assert _ids(client, default_store, filter={"code": "NRTH00000001"}) == []
    assert _ids(client, default_store, filter={"code": "SHRD00000002"}) == [home]
    north_token = mint(permissions=PHYSICAL_ONLY, stores=["north"])
    assert _ids(client, north_token, filter={"code": "NRTH00000001"}) == [north]
    assert _ids(client, north_token, filter={"code": "SHRD00000002"}) == [north_shared]
    both = mint(permissions=PHYSICAL_ONLY, stores=["north", "default"])
    assert _ids(client, both, filter={"code": "SHRD00000002"}) == [home, north_shared]
    assert _ids(client, both, filter={"code": "SHRD00000002", "storeId": "default"}) == [home]


# --- hasPhysicalCode -----------------------------------------------------------------------------


def test_has_physical_code_splits_the_cards_by_a_live_physical_code(client, lister, seed, services):
    physical = seed({CodeType.PHYSICAL: "PHYS00000001"})
    revoked = seed(
        {CodeType.PHYSICAL: "PHYS00000002", CodeType.EXTERNAL: "EXTN00000002"}, revoked={CodeType.PHYSICAL}
    )
    external = seed({CodeType.EXTERNAL: "EXTN00000003"})
    blocked = seed({CodeType.PHYSICAL: "PHYS00000004", CodeType.EXTERNAL: "EXTN00000004"})
    deactivated = seed({CodeType.PHYSICAL: "PHYS00000005"})
    bare = seed({})
    _set_state(services, blocked, "BLOCKED")
    _set_state(services, deactivated, "DEACTIVATED")
    assert _ids(client, lister, filter={"hasPhysicalCode": True}) == [physical, blocked]
    assert _ids(client, lister, filter={"hasPhysicalCode": False}) == [revoked, external, bare]
    # true agrees with codeType: PHYSICAL
    assert _ids(client, lister, filter={"codeType": "PHYSICAL"}) == [physical, blocked]
    assert _ids(client, lister, filter={"hasPhysicalCode": True, "codeType": "PHYSICAL"}) == [
        physical,
        blocked,
    ]
    # combined with the other filters (AND)
    assert _ids(client, lister, filter={"hasPhysicalCode": True, "codeType": "EXTERNAL"}) == [blocked]
    assert _ids(client, lister, filter={"hasPhysicalCode": False, "codeType": "EXTERNAL"}) == [
        revoked,
        external,
    ]
    assert _ids(client, lister, filter={"hasPhysicalCode": False, "codeType": "PHYSICAL"}) == []
    assert _ids(client, lister, filter={"hasPhysicalCode": True, "state": "BLOCKED"}) == [blocked]
    assert _ids(client, lister, filter={"hasPhysicalCode": False, "state": "PENDING"}) == [
        revoked,
        external,
        bare,
    ]
    assert _ids(client, lister, filter={"hasPhysicalCode": True, "state": "DEACTIVATED"}) == [deactivated]
    assert _ids(client, lister, filter={"hasPhysicalCode": True, "includeDeactivated": True}) == [
        physical,
        blocked,
        deactivated,
    ]
    assert _ids(client, lister, filter={"hasPhysicalCode": True}, orderBy="CREATED_DESC", last=1) == [
        physical
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("value", [True, False])
def test_has_physical_code_needs_use_physical_gift_card_codes(client, mint, seed, value):
    seed({CodeType.PHYSICAL: "PHYS00000001"})
    token = mint(permissions=["ListGiftCards", "UseExternalGiftCardCodes"])
    assert _refused(client, token, filter={"hasPhysicalCode": value}) == ("FORBIDDEN", "hasPhysicalCode")
