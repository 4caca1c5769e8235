"""The Strawberry schema, its extensions, and how errors reach clients.

Parsing and validation are cached (clients that send variables hit the caches). Errors raised on
purpose (:class:`~app.errors.GiftCardError`) go out with their ``extensions.code``; GraphQL syntax
and validation errors get a code of their own; anything else is logged and masked as ``INTERNAL``
(both when the HTTP view formats the result, see :func:`format_result`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, ParserCache, SchemaExtension, ValidationCache
from strawberry.http import process_result
from strawberry.types import ExecutionContext, ExecutionResult

from app.errors import ErrorCode, GiftCardError
from app.graphql.mutations import Mutation
from app.graphql.queries import Query

log = logging.getLogger("app.graphql")

CACHE_SIZE = 512
INTERNAL_MESSAGE = "Internal error."


def _is_ours(error: GraphQLError) -> bool:
    return isinstance(error.original_error, GiftCardError)


def _is_unexpected(error: GraphQLError) -> bool:
    # Syntax, validation and variable-coercion errors describe the request, not the server:
    # they have no original error, or a GraphQLError as one.
    original = error.original_error
    return original is not None and not isinstance(original, GiftCardError | GraphQLError)


def _masked(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        INTERNAL_MESSAGE, nodes=error.nodes, path=error.path,
        extensions={"code": ErrorCode.INTERNAL.value},
    )


def format_result(result: ExecutionResult) -> dict[str, Any]:
    """The response body: unexpected errors masked, every error with an ``extensions.code``.

    Done here, once per response, rather than in a schema extension: every extension hook
    costs time on every request.
    """
    if result.errors:
        result.errors = [_masked(e) if _is_unexpected(e) else e for e in result.errors]
    return add_document_error_codes(dict(process_result(result)))


def add_document_error_codes(payload: dict[str, Any]) -> dict[str, Any]:
    """Give syntax, validation and variable errors (the only ones without a code) a code too."""
    for error in payload.get("errors") or ():
        if "extensions" not in error:
            message = error.get("message", "")
            if message.startswith("Syntax Error"):
                code = ErrorCode.GRAPHQL_PARSE_FAILED
            elif message.startswith("Variable "):
                code = ErrorCode.BAD_USER_INPUT
            else:
                code = ErrorCode.GRAPHQL_VALIDATION_FAILED
            error["extensions"] = {"code": code.value}
    return payload


class GiftCardSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Client errors are answers, not incidents: log only the unexpected ones, with the stack.
        for error in errors:
            if _is_unexpected(error):
                log.error("unexpected error in %s", error.path, exc_info=error.original_error)


def build_schema(*, introspection: bool = True) -> GiftCardSchema:
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return GiftCardSchema(query=Query, mutation=Mutation, extensions=extensions)  # type: ignore[arg-type]


