"""Limits on every GraphQL document: depth, aliases, fields, tokens; no suggestions; introspection and IDE."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient
from strawberry.extensions.validation_cache import _get_validate_cache

from app.graphql.schema import CACHE_SIZE
from app.http import create_app
from app.services import build_services
from tests.conftest import error_codes, gql, make_settings
from tests.test_slow_documents import FIELD_CAP_MESSAGE, nested

LEAF = "{ limitedByPermission }"


def _depth(levels: int) -> str:
    """A document `levels` deep: giftcards → edges → node → codes … (only the depth matters)."""
    inner = "id"
    for name in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"][: levels - 1]:
        inner = f"{name} {{ {inner} }}"
    return f"{{ giftcards {{ {inner} }} }}"


def _aliases(count: int) -> str:
    return "{ " + " ".join(f"a{n}: __typename" for n in range(count)) + " }"


def _exactly(total: int) -> str:
    """A document of exactly ``total`` fields once expanded: fragment Pk spreads P(k-1) twice."""
    powers = [k for k in range(total.bit_length()) if total >> k & 1]
    fragments = ["fragment P0 on Query { __typename }"] + [
        f"fragment P{k} on Query {{ ...P{k - 1} ...P{k - 1} }}" for k in range(1, max(powers) + 1)
    ]
    return "{ " + " ".join(f"...P{k}" for k in powers) + " } " + " ".join(fragments)


def _depth_in_fragments(levels: int) -> str:
    """A document ``levels`` deep, one level in each fragment (only the depth matters)."""
    fragments = [f"fragment D{n} on Query {{ f{n} {{ ...D{n + 1} }} }}" for n in range(1, levels - 1)]
    last = f"fragment D{levels - 1} on Query {{ g {{ id }} }}"
    return " ".join(["{ giftcards { ...D1 } }", *fragments, last])


@pytest.fixture
def token(mint):
    return mint(roles=["admin"])


def test_depth_over_the_limit_is_refused_before_anything_runs(client, token):
    body = gql(client, _depth(9), token=token)
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert any("depth of 8" in error["message"] for error in body["errors"])
    assert "data" not in body


def test_a_real_document_at_the_depth_limit_passes(client, token):
    document = """{ giftcards { edges { node { transactions { id } openAuthorizations { id }
                    codes { id } } } pageInfo { hasNextPage } } }"""
    assert error_codes(gql(client, document, token=token)) == []


def test_aliases_over_the_limit_are_refused(client):
    assert error_codes(gql(client, _aliases(15))) == []
    body = gql(client, _aliases(16))
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert body["errors"][0]["message"] == "The document has 16 aliases; at most 15 are allowed."


def test_aliases_hidden_in_a_fragment_spread_twice_count_twice(client):
    fragment = "fragment F on Query { " + " ".join(f"f{n}: __typename" for n in range(8)) + " }"
    body = gql(client, "{ ...F ... on Query { ...F } } " + fragment)
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "16 aliases" in body["errors"][0]["message"]


def test_circular_fragments_are_refused_without_recursion(client):
    body = gql(client, "{ ...A } fragment A on Query { x: __typename ...B } fragment B on Query { ...A }")
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}


def test_too_many_tokens_stop_the_parser(client):
    document = "{ " + " ".join(["__typename"] * 2001) + " }"
    body = gql(client, document)
    assert error_codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert body["errors"][0]["message"] == "The document has more than 2000 tokens."


def test_no_field_suggestions(client, token):
    body = gql(client, '{ giftcardz(code: "X") { results { id } } }', token=token)
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Did you mean" not in str(body) and "giftcards" not in str(body)


@pytest.mark.settings(max_query_depth=3, max_aliases=1, max_query_tokens=100)
def test_limits_follow_the_settings(client, token):
    assert any("depth of 3" in error["message"] for error in gql(client, _depth(4), token=token)["errors"])
    assert error_codes(gql(client, _aliases(2))) == ["GRAPHQL_VALIDATION_FAILED"]
    assert error_codes(gql(client, "{ " + " ".join(["__typename"] * 101) + " }")) == ["GRAPHQL_PARSE_FAILED"]


def test_batches_are_refused(client):
    response = client.post("/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}])
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("env", "overrides", "introspection", "ide"),
    [
        ("development", {}, True, True),
        ("production", {}, False, False),
        ("production", {"introspection": True, "graphiql": True}, True, True),
        ("development", {"introspection": False, "graphiql": False}, False, False),
    ],
)
def test_introspection_and_ide_by_environment(database_url, tmp_path, env, overrides, introspection, ide):
    settings = make_settings(database_url, tmp_path, env=env, **overrides)
    services = build_services(settings)
    try:
        with TestClient(create_app(settings, services)) as client:
            body = gql(client, "{ __schema { queryType { name } } }")
            assert (error_codes(body) == []) is introspection
            page = client.get("/graphql", headers={"Accept": "text/html"})
            assert ("graphiql" in page.text.lower()) is ide
    finally:
        services.engine.dispose()


def test_the_field_cap_counts_fields_once_fragments_are_expanded(client):
    # every spread counts: 1,000 fields pass, one more is refused naming the cap
    assert error_codes(gql(client, _exactly(1000))) == []
    body = gql(client, _exactly(1001))
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert body["errors"][0]["message"] == FIELD_CAP_MESSAGE.format(1000)


@pytest.mark.settings(max_query_fields=4)
def test_the_field_cap_follows_the_setting(client):
    assert error_codes(gql(client, _exactly(4))) == []
    body = gql(client, _exactly(5))
    assert body["errors"][0]["message"] == FIELD_CAP_MESSAGE.format(4)


def test_aliases_and_depth_hidden_in_nested_spreads_are_counted(client):
    # four levels of double spreads around one aliased field make 16 aliases
    body = gql(client, nested(5, leaf="a: __typename"))
    assert body["errors"][0]["message"] == "The document has 16 aliases; at most 15 are allowed."
    # a level of depth in each fragment adds up along the spreads
    assert "depth of 8" in gql(client, _depth_in_fragments(9))["errors"][0]["message"]
    assert all("depth" not in error["message"] for error in gql(client, _depth_in_fragments(8))["errors"])


def test_a_document_over_a_limit_is_validated_once(client):
    # Strawberry's validation cache is shared and keyed by the rule classes, built once per schema
    cache: Any = _get_validate_cache(CACHE_SIZE)
    document = nested(5, leaf="a: __typename", name="Once")  # 16 aliases
    gql(client, document)
    hits = cache.cache_info().hits
    assert error_codes(gql(client, document)) == ["GRAPHQL_VALIDATION_FAILED"]
    assert cache.cache_info().hits == hits + 1


def test_large_documents_are_not_cached(client):
    # given a valid document larger than the cached size
    from strawberry.extensions.parser_cache import _get_parse_cache

    from app.graphql.schema import CACHED_DOCUMENT_CHARS

    document = "# " + "x" * CACHED_DOCUMENT_CHARS + f"\n{{ large{uuid.uuid4().hex}: __typename }}"
    assert len(document) > CACHED_DOCUMENT_CHARS
    parses: Any = _get_parse_cache(CACHE_SIZE)
    validations: Any = _get_validate_cache(CACHE_SIZE)
    before = parses.cache_info().currsize, validations.cache_info().currsize
    # when it is sent twice, it is answered each time and neither cache keeps it
    for _ in range(2):
        assert error_codes(gql(client, document)) == []
    assert (parses.cache_info().currsize, validations.cache_info().currsize) == before
    # while a small document is kept
    gql(client, f"{{ probe{uuid.uuid4().hex}: __typename }}")  # new to this process's shared cache
    assert parses.cache_info().currsize == before[0] + 1


def test_a_document_of_many_same_named_fields_is_refused_with_a_clear_message(client):
    body = gql(client, "{ " + " ".join(["__typename"] * 300) + " }")
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert body["errors"][0]["message"].startswith("The document is too costly to validate")
