"""The record of each answered request (app.observe): root fields by their schema names, each with
its outcome, the request's outcome code, and who asked, for every route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.http import create_app
from app.observe import FieldOutcome, RequestRecord
from app.services import Services


@pytest.fixture
def records() -> list[RequestRecord]:
    return []


@pytest.fixture
def observed(settings: Settings, services: Services, records: list[RequestRecord]) -> Iterator[TestClient]:
    with TestClient(create_app(settings, services, sinks=[records.append])) as test_client:
        yield test_client


def post(client: TestClient, query: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/graphql", json={"query": query}, headers=headers).status_code


def test_each_root_field_has_its_own_outcome_under_its_schema_name(observed, records, mint):
    token = mint(permissions=["FindGiftCardByCode"], sub="pos-7")
    response = observed.post(
        "/graphql",
        json={"query": '{ first: __typename second: giftcard(id: "1") { limitedByPermission } }'},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-42"},
    )
    assert response.status_code == 200
    [record] = records
    assert record.fields == (FieldOutcome("__typename", "OK"), FieldOutcome("giftcard", "FORBIDDEN"))
    assert (record.operation, record.code, record.status) == ("query", "FORBIDDEN", 200)
    assert (record.request_id, record.subject, record.method, record.path) == (
        "req-42",
        "pos-7",
        "POST",
        "/graphql",
    )
    assert record.client == "testclient" and record.seconds > 0


def test_aliases_and_fragments_are_read_through_to_field_names(observed, records):
    post(observed, "query Q { codeGC123: __typename ...F } fragment F on Query { again: __typename }")
    [record] = records
    assert record.fields == (FieldOutcome("__typename", "OK"), FieldOutcome("__typename", "OK"))
    assert record.code == "OK"
    assert "codeGC123" not in repr(record) and record.operation == "query"


def test_a_mutation_is_recorded_as_one(observed, records):
    post(observed, "mutation { giftcardAdd(giftcard: {}) { id } }")
    [record] = records
    assert record.operation == "mutation"
    assert record.fields == (FieldOutcome("giftcardAdd", "UNAUTHENTICATED"),)
    assert record.code == "UNAUTHENTICATED" and record.subject is None


def test_a_document_that_does_not_parse_has_no_fields(observed, records):
    post(observed, "{ giftcard(code: ")
    [record] = records
    assert (record.operation, record.fields, record.code) == (None, (), "GRAPHQL_PARSE_FAILED")


def test_a_field_the_schema_lacks_is_not_recorded_by_its_name(observed, records):
    post(observed, "{ GC4928833012345 }")
    [record] = records
    assert (record.operation, record.fields, record.code) == (None, (), "GRAPHQL_VALIDATION_FAILED")


def test_a_refused_token_is_recorded_from_its_status(observed, records):
    assert post(observed, "{ __typename }", token="not-a-token") == 401
    [record] = records
    assert (record.status, record.code, record.fields, record.subject) == (401, "UNAUTHENTICATED", (), None)


def test_other_routes_are_recorded_too(observed, records):
    observed.get("/healthz")
    observed.get("/nowhere")
    assert [(record.path, record.status, record.code) for record in records] == [
        ("/healthz", 200, "OK"),
        ("/nowhere", 404, "NOT_FOUND"),
    ]
    assert all(record.request_id for record in records)


def test_a_long_chain_of_fragments_is_walked_without_recursion():
    from graphql import get_operation_ast, parse

    from app.observe import root_fields

    depth = 5000  # far past Python's recursion limit
    fragments = " ".join(f"fragment F{n} on Query {{ ...F{n + 1} }}" for n in range(depth))
    document = parse(f"{{ ...F0 }} {fragments} fragment F{depth} on Query {{ deep: __typename }}")
    operation = get_operation_ast(document)
    assert operation is not None
    assert root_fields(document, operation) == (("deep", "__typename"),)


def test_a_path_with_a_decoded_line_break_is_recorded_escaped(observed, records):
    observed.get("/x%0AINFO%20app.requests:%20forged")
    [record] = records
    assert record.path == "/x%0AINFO%20app.requests%3A%20forged" and "\n" not in record.path
