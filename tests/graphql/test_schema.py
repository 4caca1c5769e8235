"""Rules the whole schema keeps, checked by walking the graphql-core schema Strawberry builds.

- Every root field is nullable, so one refused field leaves its siblings' answers standing.
- Every field computed by a resolver (it may check a permission or read the database) is
  nullable, so it never discards the object around it, such as a committed mutation's answer.
- The error codes are published as the ``ErrorCode`` enum, each value described.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    is_non_null_type,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter

from app.errors import ErrorCode
from app.graphql.schema import build_schema

Coordinate = str  # "Type.field", as the schema coordinates spec writes it


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema()._schema


def root_fields(schema: GraphQLSchema) -> Iterator[tuple[Coordinate, GraphQLField]]:
    """Every field of the Query and Mutation types."""
    for root in (schema.query_type, schema.mutation_type):
        assert root is not None
        for name, field in root.fields.items():
            yield f"{root.name}.{name}", field


def reachable_object_types(schema: GraphQLSchema) -> Iterator[GraphQLObjectType]:
    """The object types a document can reach from the roots, the roots excluded."""
    seen: set[str] = set()
    stack: list[GraphQLNamedType] = [get_named_type(field.type) for _, field in root_fields(schema)]
    while stack:
        named = stack.pop()
        if named.name in seen or not isinstance(named, GraphQLObjectType):
            continue
        seen.add(named.name)
        yield named
        stack.extend(get_named_type(field.type) for field in named.fields.values())


def resolved_fields(schema: GraphQLSchema) -> Iterator[tuple[Coordinate, GraphQLField]]:
    """Fields below the roots whose value a resolver computes rather than copies from the object."""
    for object_type in reachable_object_types(schema):
        for name, field in object_type.fields.items():
            definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if definition is not None and definition.base_resolver is not None:
                yield f"{object_type.name}.{name}", field


def test_every_root_field_is_nullable(schema):
    non_null = [coordinate for coordinate, field in root_fields(schema) if is_non_null_type(field.type)]
    assert non_null == []


def test_every_resolved_field_below_the_roots_is_nullable(schema):
    resolved = dict(resolved_fields(schema))
    # the walk finds the permission-checked fields of a card (a guard against a walk that finds nothing)
    assert {"GiftCard.note", "GiftCard.transactions", "GiftCard.openAuthorizations"} <= set(resolved)
    assert [coordinate for coordinate, field in resolved.items() if is_non_null_type(field.type)] == []


def test_error_codes_are_an_enum_with_every_value_described(schema):
    enum = schema.get_type("ErrorCode")
    assert isinstance(enum, GraphQLEnumType)
    assert enum.description
    assert set(enum.values) == {code.name for code in ErrorCode}
    undescribed = [name for name, value in enum.values.items() if not (value.description or "").strip()]
    assert undescribed == []


def test_error_code_values_are_the_extensions_codes_clients_see():
    # the enum's names are exactly the strings sent in extensions.code
    assert all(code.name == code.value for code in ErrorCode)
