"""A POST of a known document in plain JSON is answered without Strawberry's HTTP view
(app.graphql_view): its status, headers and body are those the view gave the same request, under
either media type, and a malformed request is refused by the view as before."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from app import graphql_view
from app.enums import CodeType
from app.graphql_view import GraphQLView
from app.http import create_app

LOOKUP = """query L($code: String!) {
  giftcard(code: $code) { limitedByPermission results { id balance codes { codeType code isMasked } } } }"""
REFUSED = 'query Two { stores { id } giftcard(code: "NOPE-0000-0000") { limitedByPermission } }'
FINDER = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes"]
GRAPHQL_RESPONSE = "application/graphql-response+json"
VARYING = {"date", "x-request-id"}


@pytest.fixture
def client(settings, services):
    with TestClient(create_app(settings, services)) as test_client:
        yield test_client


@pytest.fixture
def view_runs(monkeypatch) -> list[str]:
    """The requests Strawberry's view ran, by method."""
    runs: list[str] = []
    run = GraphQLView.run

    async def counted(self: GraphQLView, request: Any, *args: Any, **kwargs: Any) -> Any:
        runs.append(request.method)
        return await run(self, request, *args, **kwargs)

    monkeypatch.setattr(GraphQLView, "run", counted)
    return runs


def _answer(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """Status, headers but the date and request id, and body (errors in path order: fields resolve
    concurrently)."""
    response = client.post("/graphql", content=body, headers=headers)
    kept = {name: value for name, value in response.headers.items() if name not in VARYING}
    content = response.content
    if content.startswith(b"{") and b'"errors"' in content:
        answer = response.json()
        answer["errors"].sort(key=lambda error: str(error.get("path")))
        content = json.dumps(answer).encode()
    return response.status_code, kept, content


def _body(query: str, variables: object = None, **extra: object) -> bytes:
    return json.dumps({"query": query, "variables": variables, **extra}).encode()


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json", None])
def test_a_known_post_answers_as_the_view_did(client, view_runs, seed, mint, accept):
    # given a card, a finder's token and a token that may see nothing
    card_id = seed({CodeType.PHYSICAL: "PHYS-0000-1111"}, balance=700)
    seed({CodeType.PHYSICAL: "PHYS-0000-2222"}, balance=5)
    finder, nobody = mint(permissions=FINDER), mint(permissions=[])
    headers = {"content-type": "application/json"} | ({"accept": accept} if accept else {})
    requests = [
        (_body(LOOKUP, {"code": "PHYS-0000-1111"}), finder),
        (_body(LOOKUP, {"code": "PHYS-0000-9999"}), finder),  # not found
        (_body(REFUSED, operationName="Two"), nobody),  # refused fields: an error status under graphql+json
        (_body(LOOKUP, {"code": 5}), finder),  # bad variables
    ]

    # when each request is sent twice: first through the view, which learns the document, then again
    answers = []
    for body, token in requests:
        with_token = headers | {"authorization": f"Bearer {token}"}
        answers.append((_answer(client, body, with_token), _answer(client, body, with_token)))

    # then the second answer is the first, status, headers and body
    for first, again in answers:
        assert again == first
    assert [status for (status, _, _), _ in answers][:2] == [200, 200]
    assert str(card_id) in answers[0][0][2].decode()
    assert b"PHYS-0000-9999" not in answers[1][0][2]
    # and only each document's first request went through the view (the lookup's, the refused one's)
    assert view_runs == ["POST", "POST"]


def test_malformed_posts_of_a_known_document_are_refused_by_the_view(client, view_runs, mint):
    # given a known lookup document
    headers = {"content-type": "application/json", "authorization": f"Bearer {mint(permissions=FINDER)}"}
    assert _answer(client, _body(LOOKUP, {"code": "PHYS-0000-1111"}), headers)[0] == 200
    learnt = len(view_runs)
    assert _answer(client, _body(LOOKUP, {"code": "PHYS-0000-1111"}), headers)[0] == 200
    assert len(view_runs) == learnt  # answered without the view

    # when it comes with parameters of the wrong shape, broken JSON or another content type
    bad = [
        _body(LOOKUP, ["PHYS-0000-1111"]),
        _body(LOOKUP, {"code": "PHYS-0000-1111"}, operationName=5),
        _body(LOOKUP, {"code": "PHYS-0000-1111"}, extensions=[1]),
        b'{"query": ' + _body(LOOKUP)[:-3],
    ]
    refusals = [_answer(client, body, headers) for body in bad]
    charset = _answer(
        client,
        _body(LOOKUP, {"code": "PHYS-0000-1111"}),
        headers | {"content-type": "application/json; charset=UTF-8"},
    )

    # then the view refuses each as before, in the API's error shape
    assert [status for status, _, _ in refusals] == [400, 400, 400, 400]
    assert b"`variables` must be an object" in refusals[0][2]
    assert b"`operationName` must be a string" in refusals[1][2]
    assert b"`extensions` must be an object" in refusals[2][2]
    assert b"Unable to parse request body as JSON" in refusals[3][2]
    # and a content type written otherwise still answers, through the view
    assert charset[0] == 200
    assert len(view_runs) == learnt + len(bad) + 1


def test_a_post_the_view_answers_is_parsed_once(client, view_runs, mint, monkeypatch):
    # given a document the server has not seen, and the JSON parser counting its calls
    parsed: list[bytes] = []
    loads = orjson.loads

    def counted(data: bytes | str) -> Any:
        parsed.append(bytes(data, "utf-8") if isinstance(data, str) else data)
        return loads(data)

    monkeypatch.setattr(graphql_view.orjson, "loads", counted)
    headers = {"content-type": "application/json", "authorization": f"Bearer {mint(permissions=FINDER)}"}
    body = _body(LOOKUP, {"code": "PHYS-0000-1111"})

    # when it is posted, so that the fast path reads the body and leaves the request to the view
    status, _, answer = _answer(client, body, headers)

    # then the view answered it, and the body was parsed once
    assert status == 200
    assert b'"giftcard"' in answer
    assert view_runs == ["POST"]
    assert parsed == [body]
