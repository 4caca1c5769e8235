"""Which operation of a document a request runs, chosen as GraphQL's GetOperation does: Strawberry
runs the first of several operations when no ``operationName`` is given, and answers a name that no
operation has with a bare 400 (see :class:`OperationContext`)."""

from __future__ import annotations

from graphql import get_operation_ast
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType


class OperationContext(ExecutionContext):
    """Strawberry's execution context, naming only the operation the request named: graphql-core's
    execute then refuses a document of several operations without a name, and a name none has, as
    request errors, before anything runs."""

    @property
    def operation_name(self) -> str | None:
        return self._provided_operation_name

    @property
    def operation_type(self) -> OperationType:
        document = self.graphql_document
        operation = get_operation_ast(document, self.operation_name) if document else None
        # None: the request is refused at execution whatever the method, so any allowed type will do
        return OperationType(operation.operation.value) if operation else OperationType.QUERY
