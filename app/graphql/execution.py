"""graphql-core's executor with a shorter way for the fields that only read an attribute.

Most fields of an answer are leaves Strawberry reads straight off the object (a card's ``balance``,
a code's ``codeType``): no resolver, no arguments, no extension. graphql-core executes each such field
as it executes any other: a path, a resolve info of fourteen parts, Strawberry's resolver and then
the completion of the value through the type's wrappers. Here each such field is read and coerced
in place, as the same ``getattr`` and the same ``coerce_output_value``. Whatever is not plainly a
value (None for a non-null field, an exception, a value the type refuses) goes back to graphql-core,
which reads the field again and answers exactly as it would have (the error, its path, the null).

A known document (app.graphql.documents) also keeps the fields graphql-core collects under each of
its selections, from one request to the next, when no variable decides them: graphql-core collects
them again for every request. And a resolver gets only the arguments given a value of those that
are null by default (:func:`given_arguments_only`), which Strawberry would otherwise convert, null
by null, on every call.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLFieldResolver,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    Undefined,
    Visitor,
    get_nullable_type,
    is_leaf_type,
    visit,
)
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.field import StrawberryField

# A leaf read off its object: the attribute, the leaf type, and whether the field is non-null.
Leaf = tuple[str, GraphQLLeafType, bool]
# A document's collected subfields, by object type and the ids of the field nodes collected under.
SubfieldsCache = dict[tuple[Any, ...], CollectedFields]
_UNSET = object()


def attribute_leaves(schema: GraphQLSchema) -> dict[str, dict[str, Leaf]]:
    """For each object type, its fields that Strawberry resolves by reading an attribute (no
    resolver, no extension) and whose type is a scalar or an enum, by field name."""
    leaves: dict[str, dict[str, Leaf]] = {}
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        found = {
            name: leaf for name, field in graphql_type.fields.items() if (leaf := _leaf(field)) is not None
        }
        if found:
            leaves[type_name] = found
    return leaves


def _leaf(field: Any) -> Leaf | None:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    # Strawberry resolves a field with no resolver, extension or exception handler (so with no
    # arguments) by this function of its own, which reads the field with the default resolver.
    if (
        not isinstance(definition, StrawberryField)
        or getattr(field.resolve, "__name__", None) != "_get_basic_result"
        or definition.default_resolver is not getattr
    ):
        return None
    leaf_type = get_nullable_type(field.type)
    if not is_leaf_type(leaf_type):
        return None
    return definition.python_name, leaf_type, isinstance(field.type, GraphQLNonNull)


class AttributeLeavesExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, reading attribute leaves in place (see the module)."""

    leaves: dict[str, dict[str, Leaf]] = {}

    def __init__(self, *args: Any, subfields: SubfieldsCache | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subfields = subfields

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields:
        """graphql-core's, kept in ``subfields`` when given: the document's own cache, which
        holds its nodes alive (so their ids stay theirs), for a document no variable selects in."""
        if self.subfields is None:
            return super().collect_subfields(return_type, field_details_list)
        key = (return_type.name, *[id(details.node) for details in field_details_list])
        collected = self.subfields.get(key)
        if collected is None:
            collected = self.subfields[key] = super().collect_subfields(return_type, field_details_list)
        return collected

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        leaves = self.leaves.get(parent_type.name)
        manager = self.middleware_manager  # Strawberry passes one, empty when no extension resolves
        if leaves is None or (manager is not None and manager.middlewares):
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        values: dict[str, Any] = {}
        rest: GroupedFieldSet = {}
        for response_name, field_details_list in grouped_field_set.items():
            leaf = leaves.get(field_details_list[0].node.name.value)
            value = _UNSET if leaf is None else _read(source_value, leaf)
            if value is _UNSET:
                rest[response_name] = field_details_list
            else:
                values[response_name] = value
        if not rest:
            return values
        others = super().execute_fields(parent_type, source_value, path, rest, position_context)
        if self.is_awaitable(others):
            return self._merged_later(grouped_field_set, values, others)
        return _merged(grouped_field_set, values, others)  # type: ignore[arg-type]

    async def _merged_later(
        self, grouped_field_set: GroupedFieldSet, values: dict[str, Any], others: Any
    ) -> dict[str, Any]:
        return _merged(grouped_field_set, values, await others)


def _read(source: Any, leaf: Leaf) -> Any:
    """The leaf's value as graphql-core would complete it, or _UNSET when graphql-core must."""
    attribute, leaf_type, non_null = leaf
    try:
        value = getattr(source, attribute)
        if value is None:
            return _UNSET if non_null else None
        coerced = leaf_type.coerce_output_value(value)
    except Exception:  # graphql-core reads it again and reports the error
        return _UNSET
    return _UNSET if coerced is None or coerced is Undefined else coerced


def _merged(
    grouped_field_set: GroupedFieldSet, values: dict[str, Any], others: dict[str, Any]
) -> dict[str, Any]:
    """The answers in the document's order (graphql-core leaves out a field it does not know)."""
    merged: dict[str, Any] = {}
    for response_name in grouped_field_set:
        if response_name in values:
            merged[response_name] = values[response_name]
        elif response_name in others:
            merged[response_name] = others[response_name]
    return merged


def fixed_selections(document: DocumentNode) -> bool:
    """Whether the fields ``document`` selects under each selection are the same for every request:
    no directive takes a variable (``@skip(if: $x)``) and no fragment has variables of its own."""
    fixed = _FixedSelections()
    visit(document, fixed)
    return fixed.fixed


class _FixedSelections(Visitor):
    fixed = True
    _in_directive = False  # a directive's arguments hold values, never another directive

    def enter_directive(self, *_: Any) -> None:
        self._in_directive = True

    def leave_directive(self, *_: Any) -> None:
        self._in_directive = False

    def enter_variable(self, *_: Any) -> None:
        if self._in_directive:
            self.fixed = False

    def enter_fragment_definition(self, node: FragmentDefinitionNode, *_: Any) -> None:
        if node.variable_definitions:
            self.fixed = False

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        if node.arguments:
            self.fixed = False


def given_arguments_only(schema: GraphQLSchema) -> None:
    """Each field's resolver in ``schema`` gets only the arguments given a value other than null,
    of those whose default is null in the schema and None in Python: graphql-core passes each
    such argument as None when it is left out, and Strawberry converts every argument it gets (a
    lookup by code converted six nulls). Left out, the argument takes its Python default, the same
    None; an argument whose null is not its default (``Maybe``, a non-null default) is passed on."""
    objects = [
        graphql_type
        for graphql_type in schema.type_map.values()
        if isinstance(graphql_type, GraphQLObjectType)
    ]
    for field in (field for graphql_type in objects for field in graphql_type.fields.values()):
        names = tuple(name for name, argument in field.args.items() if _null_by_default(argument))
        if names and field.resolve is not None:
            field.resolve = _given_only(names, field.resolve)


def _null_by_default(argument: GraphQLArgument) -> bool:
    definition = (argument.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    return (  # the schema's default is Strawberry's, from Python's
        isinstance(definition, StrawberryArgument)
        and definition.default is None
        and isinstance(definition.type, StrawberryOptional)
        and not isinstance(definition.type, StrawberryMaybe)
    )


def _given_only(names: tuple[str, ...], resolve: GraphQLFieldResolver) -> GraphQLFieldResolver:
    def resolve_given(source: Any, info: GraphQLResolveInfo[Any], **arguments: Any) -> Any:
        for name in names:
            if name in arguments and arguments[name] is None:
                del arguments[name]
        return resolve(source, info, **arguments)

    return resolve_given


def leaves_execution(schema: GraphQLSchema) -> type[AttributeLeavesExecution]:
    """The execution context class for ``schema``, with its attribute leaves found once."""
    return type("SchemaExecution", (AttributeLeavesExecution,), {"leaves": attribute_leaves(schema)})
