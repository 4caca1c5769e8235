"""A document the schema has parsed and validated before runs again without Strawberry's pipeline
(app.graphql.documents): the answers, errors, masking, refusals and records are those of its first
run."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql.execution.executor import Executor
from starlette.testclient import TestClient

from app.enums import CodeType
from app.graphql.documents import KnownDocuments
from app.http import create_app
from app.observe import FieldOutcome, RequestRecord
from tests.conftest import error_codes, gql

LOOKUP = """query L($code: String!) {
  giftcard(code: $code) { limitedByPermission results { id balance codes { codeType code isMasked } } } }"""
LISTING = "query { giftcards { edges { node { id } } } }"
STORE_FIELDS = 'query Two { stores { id } giftcard(code: "NOPE-0000-0000") { limitedByPermission } }'
ADD = 'mutation { giftcardAdd(giftcard: {currency: "USD"}) { id } }'
FINDER = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes"]


@pytest.fixture
def records() -> list[RequestRecord]:
    return []


@pytest.fixture
def observed(settings, services, records):
    app = create_app(settings, services, sinks=[records.append])
    with TestClient(app) as test_client:
        yield test_client, app


def _known(app) -> KnownDocuments:
    """The schema's known documents, found through the /graphql route's view."""
    route = next(route for route in app.routes if getattr(route, "path", None) == "/graphql")
    known = route.endpoint.schema.known
    assert isinstance(known, KnownDocuments)
    return known


def test_a_known_document_answers_as_it_did_the_first_time(observed, records, seed, mint):
    # given a card with a code shown in full and one masked, and a finder's token
    client, app = observed
    card_id = seed(
        {CodeType.PHYSICAL: "PHYS-0000-1111", CodeType.PERSONAL: "ABCDEFGHJKLMNPQRSTUV"}, balance=700
    )
    other_id = seed({CodeType.PHYSICAL: "PHYS-0000-2222"}, balance=5)
    token = mint(permissions=FINDER)

    # when the same lookup document is sent for two cards, twice each
    first = gql(client, LOOKUP, {"code": "PHYS-0000-1111"}, token=token)
    assert _known(app).get(LOOKUP, None) is not None  # the first run made it known
    again = gql(client, LOOKUP, {"code": "PHYS-0000-1111"}, token=token)
    other = gql(client, LOOKUP, {"code": "PHYS00002222"}, token=token)

    # then the known run answers exactly as the first, per card, masked alike
    assert again == first
    result = first["data"]["giftcard"]
    assert result["limitedByPermission"] is True
    assert result["results"][0]["id"] == str(card_id)
    assert {code["codeType"]: code["code"] for code in result["results"][0]["codes"]} == {
        "PHYSICAL": "PHYS00001111",
        "PERSONAL": "****************STUV",
    }
    assert other["data"]["giftcard"]["results"][0]["id"] == str(other_id)
    assert other["data"]["giftcard"]["results"][0]["balance"] == "0.05"
    # and each request's record names its operation and root field
    lookups = [record for record in records if record.path == "/graphql"]
    assert [(record.operation, record.fields) for record in lookups] == [
        ("query", (FieldOutcome("giftcard", "OK"),))
    ] * 3


def _in_path_order(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its errors by path: fields that read in worker threads finish in any order."""
    return {**body, "errors": sorted(body.get("errors", []), key=lambda error: error["path"])}


def test_refusals_and_bad_variables_are_answered_alike_when_known(observed, records, mint):
    client, _ = observed
    finder, nobody = mint(permissions=FINDER), mint(permissions=["UsePhysicalGiftCardCodes"])
    # a field refused for the caller's permissions, next to one answered (partial results)
    refused = [_in_path_order(gql(client, STORE_FIELDS, token=nobody)) for _ in range(2)]
    assert refused[0] == refused[1]
    assert sorted(error_codes(refused[0])) == ["FORBIDDEN", "FORBIDDEN"]
    answered = [
        gql(client, STORE_FIELDS, token=mint(permissions=[*FINDER, "ListGiftCards"])) for _ in range(2)
    ]
    assert (
        answered[0]
        == answered[1]
        == {"data": {"stores": [{"id": "default"}], "giftcard": {"limitedByPermission": False}}}
    )
    # a variable of the wrong type, or missing, refused before anything runs
    for variables in ({"code": 12}, {}, {"code": 12}):
        body = gql(client, LOOKUP, variables, token=finder)
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert "data" not in body
    assert [record.fields for record in records if record.code == "BAD_USER_INPUT"] == [()] * 3


def test_a_known_mutation_is_still_refused_over_get(observed, mint):
    client, app = observed
    admin = mint(roles=["admin"])
    headers = {"authorization": f"Bearer {admin}"}
    assert client.post("/graphql", json={"query": ADD}, headers=headers).status_code == 200  # refused or not
    assert _known(app).get(ADD, None) is not None
    # when the known mutation is sent over GET, it is refused as before it was known
    response = client.get("/graphql", params={"query": ADD}, headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    # and a known query still runs over GET
    assert client.get("/graphql", params={"query": LISTING}, headers=headers).status_code == 200
    assert client.get("/graphql", params={"query": LISTING}, headers=headers).status_code == 200


def test_an_unexpected_error_of_a_known_document_is_masked_and_logged(observed, services, mint, caplog):
    # given a lookup that fails inside (a fault of the server, not of the request)
    client, _ = observed
    token = mint(permissions=FINDER)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the card store is gone: secret detail")

    services.lookup.find = broken  # type: ignore[method-assign]
    # when it is asked twice (the second time as a known document)
    with caplog.at_level(logging.ERROR, logger="app.graphql"):
        bodies = [
            client.post(
                "/graphql",
                json={"query": LOOKUP, "variables": {"code": "PHYS-0000-1111"}},
                headers={"authorization": f"Bearer {token}", "x-request-id": f"req-{n}"},
            ).json()
            for n in range(2)
        ]
    # then each answer is masked as INTERNAL, and each error logged with its request id
    assert bodies[0] == bodies[1]
    assert error_codes(bodies[0]) == ["INTERNAL"]
    assert "secret" not in str(bodies[0])
    logged = [record.getMessage() for record in caplog.records if record.name == "app.graphql"]
    assert len(logged) == 2
    assert "(request req-0)" in logged[0] and "(request req-1)" in logged[1]


@pytest.mark.settings(max_aliases=1)
def test_a_document_over_a_limit_never_becomes_known(observed, mint):
    client, app = observed
    document = "query { a: __typename b: __typename }"
    for _ in range(2):
        assert error_codes(gql(client, document, token=mint(permissions=FINDER))) == [
            "GRAPHQL_VALIDATION_FAILED"
        ]
    assert _known(app).get(document, None) is None


SKIPPING = """query S($code: String!, $hide: Boolean!) { giftcard(code: $code) {
  results { id balance @skip(if: $hide) codes @include(if: $hide) { codeType } } } }"""


def test_a_variable_that_decides_the_fields_decides_them_each_time(observed, seed, mint):
    # given a card, and a known document whose variable skips or includes fields
    client, app = observed
    card_id = seed({CodeType.PHYSICAL: "PHYS-0000-3333"}, balance=120)
    token = mint(permissions=FINDER)
    answers = [
        gql(client, SKIPPING, {"code": "PHYS-0000-3333", "hide": hide}, token=token) for hide in (False, True)
    ]
    known = _known(app).get(SKIPPING, None)
    assert known is not None and known.subfields is None  # never kept: a variable decides
    # when it is run again (known now), with the variable one way and then the other
    again = [
        gql(client, SKIPPING, {"code": "PHYS-0000-3333", "hide": hide}, token=token) for hide in (False, True)
    ]
    # then each run selects by its own variable
    assert again == answers
    assert [body["data"]["giftcard"]["results"] for body in again] == [
        [{"id": str(card_id), "balance": "1.20"}],
        [{"id": str(card_id), "codes": [{"codeType": "PHYSICAL"}]}],
    ]


def test_a_known_document_keeps_its_selections_for_every_card(observed, seed, mint):
    # given two cards of different shapes and a known lookup
    client, app = observed
    seed({CodeType.PHYSICAL: "PHYS-0000-4444", CodeType.PERSONAL: "ABCDEFGHJKLMNPQRSTUW"}, balance=1)
    seed({CodeType.PHYSICAL: "PHYS-0000-5555"}, balance=2)
    token = mint(permissions=FINDER)
    first = [gql(client, LOOKUP, {"code": "PHYS-0000-4444"}, token=token)]
    known = _known(app).get(LOOKUP, None)
    assert known is not None and known.subfields == {}  # learnt: kept from the next run on
    first.append(gql(client, LOOKUP, {"code": "PHYS-0000-5555"}, token=token))
    # when each is looked up again, on what the runs before collected
    again = [
        gql(client, LOOKUP, {"code": code}, token=token) for code in ("PHYS-0000-5555", "PHYS-0000-4444")
    ]
    # then the answers are the first ones, with the selections kept: result, card and code
    assert again == first[::-1]
    assert sorted(name for name, *_ in known.subfields) == [
        "GiftCard",
        "GiftCardCode",
        "GiftCardSearchResult",
    ]


TWO_LOOKUPS = """query T($a: String!, $b: String!) {
  a: giftcard(code: $a) { results { ...Card } } b: giftcard(code: $b) { results { balance } } }
fragment Card on GiftCard { id }"""


def test_selections_of_one_type_are_kept_apart(observed, seed, mint, monkeypatch):
    # given two cards and a known document selecting different fields of a card under two aliases
    client, _ = observed
    first_id = seed({CodeType.PHYSICAL: "PHYS-0000-6666"}, balance=300)
    seed({CodeType.PHYSICAL: "PHYS-0000-7777"}, balance=400)
    token = mint(permissions=FINDER)
    variables = {"a": "PHYS-0000-6666", "b": "PHYS-0000-7777"}
    learnt = gql(client, TWO_LOOKUPS, variables, token=token)
    assert gql(client, TWO_LOOKUPS, variables, token=token) == learnt  # collected and kept
    # when it runs again with its selections kept (graphql-core collects nothing more)
    collected: list[str] = []
    collect = Executor.collect_subfields

    def counted(self, return_type, field_details_list):
        collected.append(return_type.name)
        return collect(self, return_type, field_details_list)

    monkeypatch.setattr(Executor, "collect_subfields", counted)
    again = gql(client, TWO_LOOKUPS, variables, token=token)
    # then each alias has its own fields, as when the document was new
    assert (
        again
        == learnt
        == {"data": {"a": {"results": [{"id": str(first_id)}]}, "b": {"results": [{"balance": "4.00"}]}}}
    )
    assert collected == []
