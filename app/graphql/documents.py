"""What the schema does with a request's document before running it: the document limits, the caches
of parsing and validation, the record of the root fields run (app.observe), and the documents known
to be good, which later requests run straight through graphql-core's executor.

A document that parsed and validated once (with the same limits, as the same operation) does so
again: validation never looks at variables. So a request whose document and operation name are
known skips Strawberry's pipeline (an execution context, a generator per extension hook, parsing
and validation through their caches) and is executed on the same schema, with the same context,
root value and executor, into the same result (see GiftCardSchema.execute).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any, TypeGuard, cast

from graphql import ASTValidationRule, DocumentNode, execute, get_operation_ast
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry import Schema
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from app.graphql.execution import SubfieldsCache, fixed_selections
from app.observe import root_fields

CACHE_SIZE = 512
# Only documents up to this size are cached. Clients that send variables send small documents
# (GraphiQL's introspection query is ~1.6 KB); a cache full of large one-off documents holds
# millions of AST objects, and each full garbage collection then stalls the worker for seconds.
CACHED_DOCUMENT_CHARS = 2048

RootRecord = tuple[str, tuple[tuple[str, str], ...]]  # operation type, (response key, field) of each


@dataclass(frozen=True, slots=True)
class KnownDocument:
    document: DocumentNode
    operation_type: OperationType
    root: RootRecord  # what the request's record notes of it (app.observe)
    # The fields collected under each of its selections, kept from one request to the next; None
    # when a variable decides which are (app.graphql.execution).
    subfields: SubfieldsCache | None


class KnownDocuments:
    """The small documents that parsed and validated, by query text and operation name; the oldest
    goes when ``maxsize`` are held. Used on the event loop only."""

    def __init__(self, maxsize: int = CACHE_SIZE) -> None:
        self._maxsize = maxsize
        self._known: dict[tuple[str, str | None], KnownDocument] = {}

    def get(self, query: str, operation_name: str | None) -> KnownDocument | None:
        return self._known.get((query, operation_name))

    def learn(self, context: ExecutionContext) -> None:
        """Keep the document of ``context``, which has just parsed and validated, if it names one
        operation to run and is small."""
        document, query = context.graphql_document, context.query
        if document is None or query is None or not _cached(context):
            return
        operation = get_operation_ast(document, context.operation_name)
        if operation is None:  # refused by the executor, every time
            return
        key = (query, context.operation_name)
        if key not in self._known and len(self._known) >= self._maxsize:
            del self._known[next(iter(self._known))]
        root = (operation.operation.value, root_fields(document, operation))
        subfields: SubfieldsCache | None = {} if fixed_selections(document) else None
        self._known[key] = KnownDocument(document, OperationType(operation.operation.value), root, subfields)


async def run_known(
    schema: Schema,
    known: KnownDocument,
    context_value: Any,
    root_value: Any,
    operation: dict[str, Any],
    operation_extensions: dict[str, Any] | None,
) -> ExecutionResult:
    """Run ``known`` as Strawberry's pipeline would once past validation: graphql-core's executor
    with Strawberry's execution context class, unexpected errors handed to the schema's
    ``process_errors``, and the request's record of its root fields. ``operation``: the request's
    ``variable_values`` and ``operation_name``."""
    result = execute(
        schema._schema,
        known.document,
        root_value=root_value,
        context_value=context_value,
        is_awaitable=cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable),
        executor_class=schema.execution_context_class,
        operation_extensions=operation_extensions,
        subfields=known.subfields,
        **operation,
    )
    if isawaitable(result):
        result = await result
    assert isinstance(result, GraphQLExecutionResult)
    if (state := getattr(context_value, "request_state", None)) is not None:
        state["graphql_root"] = known.root
    if result.errors:
        logged = ExecutionContext(
            query=None, schema=schema, allowed_operations=(known.operation_type,), context=context_value
        )
        logged.graphql_document = known.document
        schema._process_errors(result.errors, logged)
    return ExecutionResult(data=result.data, errors=result.errors)


class Limits(SchemaExtension):
    """One hook for the document limits. The rule is built once per schema, so the validation cache
    (keyed by the rules) keeps hitting; Strawberry's limiter extensions build new ones per request.
    A document that reaches execution has passed them all: ``known`` (if any) keeps it."""

    def __init__(
        self,
        max_tokens: int,
        rules: tuple[type[ASTValidationRule], ...],
        known: KnownDocuments | None = None,
    ) -> None:
        self.max_tokens = max_tokens
        self.rules = rules
        self.known = known

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = (*context.validation_rules, *self.rules)
        yield
        note_root_fields(context)

    def on_execute(self) -> Iterator[None]:
        if self.known is not None:
            self.known.learn(self.execution_context)
        yield


def note_root_fields(context: ExecutionContext) -> None:
    """The executed operation's type and root fields, for the request's record (app.observe)."""
    state = getattr(context.context, "request_state", None)
    document = context.graphql_document
    if state is None or document is None:
        return
    operation = get_operation_ast(document, context.operation_name)
    if operation is not None:
        state["graphql_root"] = (operation.operation.value, root_fields(document, operation))


def _cached(execution_context: ExecutionContext) -> bool:
    return len(execution_context.query or "") <= CACHED_DOCUMENT_CHARS


class SmallDocumentParserCache(ParserCache):
    """Strawberry's parse cache for small documents; larger ones are parsed each time."""

    def on_parse(self) -> Iterator[None]:
        if _cached(self.execution_context):
            yield from super().on_parse()
        else:
            yield


class SmallDocumentValidationCache(ValidationCache):
    """Strawberry's validation cache for small documents; larger ones are validated each time."""

    def on_validate(self) -> Iterator[None]:
        if _cached(self.execution_context):
            yield from super().on_validate()
        else:
            yield
