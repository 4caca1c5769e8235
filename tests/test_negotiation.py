"""GraphQL over HTTP's two media types: which one ``Accept`` chooses, and the status of an answer
under each (a request error is a 400 only under application/graphql-response+json)."""

from __future__ import annotations

import pytest

from app.negotiation import GRAPHQL_RESPONSE, JSON, choose_media_type, response_status
from tests.conftest import error_codes

TYPENAME = {"query": "{ __typename }"}
REQUEST_ERRORS = {
    "syntax": ({"query": "{"}, "GRAPHQL_PARSE_FAILED"),
    "validation": ({"query": "{ nosuchfield }"}, "GRAPHQL_VALIDATION_FAILED"),
    "variable": ({"query": "query($id: ID!) { __typename }", "variables": {"id": None}}, "BAD_USER_INPUT"),
}


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("APPLICATION/JSON; charset=utf-8", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json;q=0.9, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json", GRAPHQL_RESPONSE),  # equal: the one listed first
        (f"application/json, {GRAPHQL_RESPONSE}", JSON),
        ("application/json;q=0, */*", GRAPHQL_RESPONSE),
        ("application/json;q=0.5, application/*", GRAPHQL_RESPONSE),  # the most specific entry counts
        (f"{GRAPHQL_RESPONSE};q=0.5, */*;q=0.9", JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),  # a browser
        ("application/json, multipart/mixed", JSON),  # GraphiQL
        ("application/xml", None),
        ("text/html", None),
        ("*/*;q=0", None),
        ("application/json;q=0", None),
        ("application/json;q=abc", None),
        ("application/json;q=2", None),
    ],
)
def test_accept_chooses_a_media_type(accept, chosen):
    assert choose_media_type(accept) == chosen


@pytest.mark.parametrize(
    ("body", "legacy", "graphql_response"),
    [
        ({"data": {"a": 1}}, 200, 200),
        ({"data": {"a": None}, "errors": [{"extensions": {"code": "FORBIDDEN"}}]}, 200, 200),
        ({"errors": [{"extensions": {"code": "GRAPHQL_PARSE_FAILED"}}]}, 200, 400),
        ({"errors": [{"extensions": {"code": "INTERNAL"}}]}, 200, 500),
    ],
    ids=["data", "field-error", "request-error", "server-error"],
)
def test_the_status_of_an_answer(body, legacy, graphql_response):
    assert response_status(body, JSON) == legacy
    assert response_status(body, GRAPHQL_RESPONSE) == graphql_response


# --- through the app ---------------------------------------------------------------------------


def test_an_answer_goes_out_in_the_media_type_asked_for(client):
    for accept, media_type in [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("application/json", JSON),
        ("*/*", JSON),
    ]:
        response = client.post("/graphql", json=TYPENAME, headers={"Accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
        assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("case", REQUEST_ERRORS)
def test_a_request_error_is_a_400_without_data_under_graphql_response_json(client, case):
    payload, code = REQUEST_ERRORS[case]
    response = client.post("/graphql", json=payload, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 400
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    body = response.json()
    assert "data" not in body and error_codes(body) == [code]


@pytest.mark.parametrize("case", REQUEST_ERRORS)
def test_a_request_error_is_a_200_without_data_under_application_json(client, case):
    payload, code = REQUEST_ERRORS[case]
    response = client.post("/graphql", json=payload, headers={"Accept": "application/json"})
    assert response.status_code == 200
    body = response.json()
    assert "data" not in body and error_codes(body) == [code]


def test_a_field_error_is_a_200_with_data_under_graphql_response_json(client):
    # given an anonymous lookup, refused field by field
    query = '{ giftcard(code: "G59220000045") { limitedByPermission } }'
    response = client.post("/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"giftcard": None} and error_codes(body) == ["UNAUTHENTICATED"]


def test_a_malformed_request_is_a_400_under_either_media_type(client):
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        response = client.post(
            "/graphql",
            content=b'{ "not a JSON',
            headers={"Accept": accept, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert error_codes(response.json()) == ["BAD_USER_INPUT"]


def test_refusals_go_out_in_the_media_type_asked_for(client):
    headers = {"Accept": GRAPHQL_RESPONSE, "Authorization": "Bearer not-a-token"}
    refused = client.post("/graphql", json=TYPENAME, headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert error_codes(refused.json()) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("accept", ["application/xml", "text/plain", "application/json;q=0"])
def test_an_accept_that_takes_neither_media_type_is_a_406(client, accept):
    response = client.post("/graphql", json=TYPENAME, headers={"Accept": accept, "X-Request-ID": "r-406"})
    assert response.status_code == 406  # 200 in application/json before this release
    assert response.headers["content-type"] == f"{JSON}; charset=utf-8"
    assert response.headers["x-request-id"] == "r-406"
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]


def test_a_browser_still_gets_the_ide_page(client):
    page = client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
