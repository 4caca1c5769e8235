"""What one request was, once it is answered: a :class:`RequestRecord` handed to each sink (the log
line, the metrics). Its names come from the server, never from the client: root fields are the
schema's names (not aliases), and the outcome is ``OK`` or an error code."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OK = "OK"
# The outcome of an answer that GraphQL did not write (a refusal before the document was read, a
# probe, the token endpoint), from its status.
_STATUS_CODES = {
    400: "BAD_USER_INPUT",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "BAD_USER_INPUT",
    406: "BAD_USER_INPUT",
    413: "BAD_USER_INPUT",
    414: "BAD_USER_INPUT",
    415: "BAD_USER_INPUT",
    429: "RATE_LIMITED",
}


@dataclasses.dataclass(frozen=True, slots=True)
class FieldOutcome:
    """One root field of a GraphQL request: its schema name and ``OK`` or its error's code."""

    field: str
    code: str


@dataclasses.dataclass(frozen=True, slots=True)
class RequestRecord:
    request_id: str | None
    method: str
    path: str
    status: int
    seconds: float
    client: str | None
    subject: str | None
    operation: str | None  # "query" or "mutation" for a GraphQL request that was executed
    fields: tuple[FieldOutcome, ...]
    code: str  # OK, or the first error's code


Sink = Callable[[RequestRecord], None]


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> tuple[tuple[str, str], ...]:
    """(response key, field name) of each root field ``operation`` selects, through fragments. A walk
    with a stack of its own, not recursion: a chain of fragments as long as the token limit allows
    must not exhaust Python's stack (the document may not even be valid yet)."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    found: list[tuple[str, str]] = []
    seen: set[str] = set()  # a spread twice selects the same fields once
    stack: list[SelectionNode] = list(reversed(operation.selection_set.selections))
    while stack:
        selection = stack.pop()
        if isinstance(selection, FieldNode):
            name = selection.name.value
            found.append(((selection.alias.value if selection.alias else name), name))
        elif isinstance(selection, InlineFragmentNode):
            stack.extend(reversed(selection.selection_set.selections))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            if fragment := fragments.get(selection.name.value):
                stack.extend(reversed(fragment.selection_set.selections))
    return tuple(dict.fromkeys(found))


def field_outcomes(
    selected: Iterable[tuple[str, str]], errors: Sequence[GraphQLError] | None
) -> tuple[FieldOutcome, ...]:
    """Each selected root field with the code of the first error under it, else ``OK``; none when
    the request itself was refused (an error without a path: nothing ran)."""
    codes: dict[str, str] = {}
    for error in errors or ():
        if not error.path:
            return ()
        codes.setdefault(str(error.path[0]), _code(error))
    return tuple(FieldOutcome(name, codes.get(key, OK)) for key, name in selected)


def request_code(errors: Sequence[GraphQLError] | None) -> str:
    return _code(errors[0]) if errors else OK


def _code(error: GraphQLError) -> str:
    return str((error.extensions or {}).get("code", "INTERNAL"))


@dataclasses.dataclass
class ObserverMiddleware:
    """Outermost: times each HTTP request and hands its record to every sink once it is answered.
    GraphQL leaves its outcome in ``scope["state"]`` (``graphql_outcome``); other answers are known
    by their status."""

    app: ASGIApp
    sinks: Sequence[Sink]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        state = scope.setdefault("state", {})

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            record = _record(scope, state, status, time.perf_counter() - started)
            for sink in self.sinks:
                sink(record)


def _record(scope: Scope, state: dict[str, Any], status: int, seconds: float) -> RequestRecord:
    operation, fields, code = state.get("graphql_outcome") or (None, (), None)
    if code is None:
        code = OK if status < 400 else _STATUS_CODES.get(status, "INTERNAL")
    principal, client = state.get("principal"), scope.get("client")
    return RequestRecord(
        request_id=state.get("request_id"),
        method=scope["method"],
        path=_printable(scope["path"]),
        status=status,
        seconds=seconds,
        client=client[0] if client else None,
        subject=getattr(principal, "subject", None),
        operation=operation,
        fields=fields,
        code=code,
    )


def _printable(path: str) -> str:
    """The path as a log line may hold it: a decoded ``%0A`` must not start a line of its own."""
    return path if path.isprintable() else quote(path)
