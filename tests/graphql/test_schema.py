"""Rules the whole schema keeps, checked by walking the graphql-core schema Strawberry builds.

- Every root field is nullable, so one refused field leaves its siblings' answers standing.
- Every field computed by a resolver (it may check a permission or read the database) is
  nullable, so it never discards the object around it, such as a committed mutation's answer.
- The error codes are published as the ``ErrorCode`` enum, each value described.
- Every type, field, argument, input field and enum value has a description, and every custom
  scalar one of its own (not the library's default) and the URL of its specification.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_non_null_type,
    specified_scalar_types,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.types.base_scalars import (
    DateDefinition,
    DateTimeDefinition,
    DecimalDefinition,
    TimeDefinition,
    UUIDDefinition,
    VoidDefinition,
)
from strawberry.types.scalar import ScalarDefinition

from app.errors import ErrorCode
from app.graphql.schema import build_schema

Coordinate = str  # "Type.field", as the schema coordinates spec writes it

BUILT_IN_SCALARS = set(specified_scalar_types)  # String, Int, Float, Boolean, ID
# The descriptions graphql-core and Strawberry give the scalars they define, by name.
STRAWBERRY_SCALARS: tuple[ScalarDefinition, ...] = (
    DateDefinition,
    DateTimeDefinition,
    TimeDefinition,
    DecimalDefinition,
    UUIDDefinition,
    VoidDefinition,
)
LIBRARY_SCALAR_TEXTS = {definition.name: definition.description for definition in STRAWBERRY_SCALARS} | {
    name: scalar.description for name, scalar in specified_scalar_types.items()
}


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


def _own_types(schema: GraphQLSchema) -> Iterator[GraphQLNamedType]:
    """Every type the schema holds (those its roots reach and those it lists, such as ErrorCode),
    but introspection's and GraphQL's built-in scalars."""
    for name, named in schema.type_map.items():
        if not name.startswith("__") and name not in BUILT_IN_SCALARS:
            yield named


def described_elements(schema: GraphQLSchema) -> Iterator[tuple[Coordinate, str | None]]:
    """Every type, field, argument, input field and enum value, with its description."""
    for named in _own_types(schema):
        yield named.name, named.description
        if isinstance(named, (GraphQLObjectType, GraphQLInputObjectType)):
            for name, field in named.fields.items():
                yield f"{named.name}.{name}", field.description
                for argument_name, argument in getattr(field, "args", {}).items():
                    yield f"{named.name}.{name}({argument_name}:)", argument.description
        elif isinstance(named, GraphQLEnumType):
            for name, value in named.values.items():
                yield f"{named.name}.{name}", value.description


def test_every_schema_element_is_described(schema):
    elements = dict(described_elements(schema))
    # the walk reaches every kind of element (a guard against a walk that finds nothing)
    assert {
        "Query",
        "Query.giftcard",
        "Query.giftcard(codeType:)",
        "GiftCardAddInput.physicalPin",
        "CodeType.PHYSICAL",
        "ErrorCode.FORBIDDEN",
        "DateTime",
    } <= set(elements)
    undescribed = sorted(coordinate for coordinate, text in elements.items() if not (text or "").strip())
    assert undescribed == [], f"{len(undescribed)} schema elements have no description: {undescribed}"


def test_every_custom_scalar_has_its_own_description_and_specification(schema):
    scalars = {named.name: named for named in _own_types(schema) if isinstance(named, GraphQLScalarType)}
    assert {"Date", "DateTime"} <= set(scalars)
    for name, scalar in scalars.items():
        assert (scalar.description or "").strip(), f"{name} has no description"
        assert scalar.description != LIBRARY_SCALAR_TEXTS.get(name), f"{name} keeps the library's description"
        assert (scalar.specified_by_url or "").startswith("https://"), f"{name} has no specifiedByURL"


@pytest.mark.parametrize(
    ("scalar", "url"),
    [
        ("Date", "https://scalars.graphql.org/andimarek/local-date"),
        ("DateTime", "https://scalars.graphql.org/andimarek/date-time"),
    ],
)
def test_date_scalars_name_the_specifications_their_format_follows(schema, scalar, url):
    assert schema.get_type(scalar).specified_by_url == url


def test_date_scalars_read_and_write_the_formats_their_descriptions_give(schema):
    # the examples of the descriptions, as the scalars serialize and parse them
    day, moment = schema.get_type("Date"), schema.get_type("DateTime")
    assert day.serialize(date(2027, 12, 31)) == "2027-12-31"
    assert day.parse_value("2027-12-31") == date(2027, 12, 31)
    assert moment.serialize(datetime(2027, 1, 1, 7, 30, tzinfo=UTC)) == "2027-01-01T07:30:00+00:00"
    assert moment.serialize(datetime(2027, 1, 1, 7, 30, 0, 250000, tzinfo=UTC)) == (
        "2027-01-01T07:30:00.250000+00:00"
    )
    plus_two = datetime(2027, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    assert moment.parse_value("2027-01-01T09:30:00+02:00") == plus_two
    assert moment.parse_value("2027-01-01T07:30:00Z") == plus_two  # the same instant
