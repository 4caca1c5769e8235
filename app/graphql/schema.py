"""The Strawberry schema, its extensions (limits, caches of parsing and validation), and how errors
reach clients: a GiftCardError with its ``extensions.code``, syntax and validation errors with a code of
their own, anything else logged and masked as ``INTERNAL`` (see :func:`format_result`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.http import process_result
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.str_converters import to_camel_case

from app.errors import ERROR_CODE_DESCRIPTIONS, ErrorCode, GiftCardError
from app.graphql.audit import AuditQueries, audit_mutations
from app.graphql.documents import CACHE_SIZE as CACHE_SIZE
from app.graphql.documents import CACHED_DOCUMENT_CHARS as CACHED_DOCUMENT_CHARS
from app.graphql.documents import (
    KnownDocuments,
    Limits,
    SmallDocumentParserCache,
    SmallDocumentValidationCache,
    run_known,
)
from app.graphql.execution import given_arguments_only, leaves_execution
from app.graphql.limits import DocumentLimitError, DocumentLimits, bound_field_merging, limits_rule
from app.graphql.mutations import CardMutations
from app.graphql.names import CachedNames
from app.graphql.operations import OperationContext
from app.graphql.programs import ProgramMutations, ProgramQueries
from app.graphql.queries import CardQueries
from app.graphql.reservations import ReservationMutations, ReservationQueries
from app.graphql.scalars import SCALARS
from app.graphql.stores import StoreQueries
from app.graphql.transactions import TransactionMutations
from app.graphql.variable_errors import explain

log = logging.getLogger("app.graphql")

_VARIABLE_NAME = re.compile(r"""Variable ["']\$(\w+)["']""")
# Where graphql-core quotes a value the client sent (which could be a gift card code).
_ECHOED_VALUE = re.compile(r", found |: |; ")
# graphql-core suggests names it knows ("Did you mean …?"): that would map the schema for a prober
# even with introspection off.
_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)
_TOO_MANY_TOKENS = re.compile(r"Document contains more than (\d+) tokens")
# graphql-core's refusals when no operation can be chosen (GraphQL's GetOperation); the second would
# repeat the name the client sent.
_NO_OPERATION = {
    "Must provide operation name": (
        "The document has several operations: operationName must name the one to run."
    ),
    "Unknown operation named": "The document has no operation of the name given as operationName.",
}
# The domain names fields as Python does (expires_at), the API as the schema does (expiresAt).
_NAMES = ("field", "limit")  # the extensions that name something
_DOMAIN_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def api_names(text: str) -> str:
    """``text`` with each domain name in it (``trans.source_id``) written as the schema writes it."""
    return _DOMAIN_NAME.sub(lambda name: to_camel_case(name.group()), text)


def _is_unexpected(error: GraphQLError) -> bool:
    """An error of the server's own: not a GiftCardError, and not a syntax, validation or variable
    error (those have no path, and no original error or a GraphQLError as one)."""
    original = error.original_error
    return not isinstance(original, GiftCardError) and (
        error.path is not None or (original is not None and not isinstance(original, GraphQLError))
    )


def _public(error: GraphQLError) -> GraphQLError:
    """The error as the client may see it: always a code, never an echoed value or internals."""
    extensions: dict[str, Any] = {}
    if isinstance(original := error.original_error, GiftCardError):
        code, message = original.code, api_names(original.message)
        extensions = {
            key: api_names(value) if key in _NAMES else value for key, value in original.extensions.items()
        }
    elif _is_unexpected(error):
        code, message = ErrorCode.INTERNAL, "Internal error."
    else:
        code, message = _request_error(error)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**extensions, "code": code.value},
    )


def _request_error(error: GraphQLError) -> tuple[ErrorCode, str]:
    """The code and message of an error raised before anything ran: the document did not parse or
    validate, no operation could be chosen, or a variable did not fit."""
    message = _SUGGESTION.sub("", error.message)
    if tokens := _TOO_MANY_TOKENS.search(message):
        return ErrorCode.GRAPHQL_PARSE_FAILED, f"The document has more than {tokens.group(1)} tokens."
    if isinstance(error, DocumentLimitError):  # its message names the limit, nothing the client sent
        return ErrorCode.GRAPHQL_VALIDATION_FAILED, message
    if isinstance(error, ValidationAbortedError):  # graphql-core spent its field-merging budget
        return ErrorCode.GRAPHQL_VALIDATION_FAILED, (
            "The document is too costly to validate (for example, too many fields share a "
            "response name: ask for each field once)."
        )
    if message.startswith("Syntax Error"):
        return ErrorCode.GRAPHQL_PARSE_FAILED, "Syntax Error: the document is not valid GraphQL."
    if (explained := explain(message, error.source)) is not None:
        return ErrorCode.BAD_USER_INPUT, explained
    if name := _VARIABLE_NAME.match(message):
        return (
            ErrorCode.BAD_USER_INPUT,
            f'Variable "${name.group(1)}" is missing or its value has the wrong type.',
        )
    if chosen := next((text for start, text in _NO_OPERATION.items() if message.startswith(start)), None):
        return ErrorCode.BAD_USER_INPUT, chosen
    return ErrorCode.GRAPHQL_VALIDATION_FAILED, _ECHOED_VALUE.split(message, maxsplit=1)[0].rstrip(".") + "."


def format_result(result: ExecutionResult) -> dict[str, Any]:
    """The response body: every error with an ``extensions.code``, unexpected ones masked, and no
    ``data`` entry after a request error (GraphQL's response format). Every root field is nullable,
    so only an error before execution leaves ``data`` null. Done here, once per response, rather than
    in a schema extension: every extension hook costs time on every request."""
    if result.errors:
        result.errors = [_public(error) for error in result.errors]
    body = dict(process_result(result))
    if body["data"] is None:
        del body["data"]
    return body


class GiftCardSchema(strawberry.Schema):
    known: KnownDocuments | None = None  # documents run without the pipeline (app.graphql.documents)

    async def execute(  # noqa: PLR0913
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        known = (
            self.known.get(query, operation_name) if self.known is not None and query is not None else None
        )
        allowed = (
            DEFAULT_ALLOWED_OPERATION_TYPES if allowed_operation_types is None else allowed_operation_types
        )
        if known is None or known.operation_type not in allowed:
            return await super().execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        return await run_known(
            self,
            known,
            context_value,
            root_value,
            {"variable_values": variable_values, "operation_name": operation_name},
            operation_extensions,
        )

    def _create_execution_context(  # noqa: PLR0913
        self,
        query: str | None,
        allowed_operation_types: Iterable[OperationType],
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionContext:
        # Strawberry would run the first of several operations when none is named
        return OperationContext(
            query=query,
            schema=self,
            allowed_operations=allowed_operation_types,
            context=context_value,
            root_value=root_value,
            variables=variable_values,
            provided_operation_name=operation_name,
            operation_extensions=operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Client errors are answers, not incidents: log only the unexpected ones, with the stack
        # and the request id the client was given.
        context = execution_context.context if execution_context else None
        request_id = getattr(context, "request_id", "-")
        for error in errors:
            if _is_unexpected(error):
                log.error(
                    "unexpected error in %s (request %s)",
                    error.path,
                    request_id,
                    exc_info=error.original_error or error,
                )


# The schema's root types combine one mixin class per module. Every root field is nullable:
# a refused field is null with its error, and the answers of its siblings (a mutation that
# committed) still reach the client (GraphQL's partial results).
@strawberry.type(
    description="Reads. Every field is nullable: a field the token may not read is null with its own "
    "error (extensions.code), and the other fields of the document are still answered."
)
class Query(CardQueries, ReservationQueries, AuditQueries, ProgramQueries, StoreQueries):
    pass


@audit_mutations  # a refused mutation is recorded in the audit trail
@strawberry.type(
    description="Writes, run one after another in document order, each in its own database "
    "transaction. Every field is nullable: a refused mutation is null with its own error, and the "
    "answers of those that committed stand. Each takes an optional idempotencyKey."
)
class Mutation(CardMutations, ReservationMutations, TransactionMutations, ProgramMutations):
    pass


# Errors carry their code as a string; this enum publishes the set (mirroring app.errors.ErrorCode) so
# that a client can see every answer it has to handle. No field uses it: build_schema lists it.
_ERROR_CODES = {
    code.name: strawberry.enum_value(code.value, description=ERROR_CODE_DESCRIPTIONS[code])
    for code in ErrorCode
}
GraphQLErrorCode = strawberry.enum(  # the functional API: mypy sees an instance, hence the cast
    cast("type[Enum]", Enum("ErrorCode", _ERROR_CODES)),
    description="The values of `extensions.code` on errors. An error raised by a field carries the "
    "field's `path`: that field is null, and the data of every other field stands (partial results).",
)


def build_schema(
    *,
    introspection: bool = True,
    limits: DocumentLimits | None = None,
    extra_extensions: Sequence[Callable[[], SchemaExtension]] = (),
) -> GiftCardSchema:
    """The schema with its own extensions, then ``extra_extensions`` (app.tracing's, when tracing)."""
    limits = limits or DocumentLimits()
    bound_field_merging()
    rules = (limits_rule(limits),)
    # Known documents skip every extension's hooks: none when other extensions (tracing's) want them.
    known = None if extra_extensions else KnownDocuments()
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: Limits(limits.max_tokens, rules, known),
        lambda: SmallDocumentParserCache(maxsize=CACHE_SIZE),
        lambda: SmallDocumentValidationCache(maxsize=CACHE_SIZE),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    extensions.extend(extra_extensions)
    schema = GiftCardSchema(
        query=Query,
        mutation=Mutation,
        types=[GraphQLErrorCode],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS, name_converter=CachedNames()),
    )
    schema.known = known
    schema.execution_context_class = leaves_execution(schema._schema)
    given_arguments_only(schema._schema)
    return schema


def root_field_names(schema: strawberry.Schema) -> frozenset[str]:
    """Every name a root field of a request can have: the query's and the mutation's fields, and
    the meta fields (``__typename`` …); what the metrics may label a root field with."""
    core = schema._schema  # Strawberry's graphql-core schema
    roots = [root for root in (core.query_type, core.mutation_type) if root is not None]
    return frozenset({"__typename", "__schema", "__type", *(name for root in roots for name in root.fields)})
