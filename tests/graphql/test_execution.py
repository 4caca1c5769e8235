"""The execution's shortcuts (app.graphql.execution): leaves read in place and arguments passed only
when given answer as graphql-core and Strawberry do without them (answers, errors and paths, on a
schema built to reach each way out of the short read, and the server's schema on the fields it
reads that way); which documents select alike on every request."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, NewType

import pytest
import strawberry
from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig

from app.graphql.execution import (
    AttributeLeavesExecution,
    attribute_leaves,
    fixed_selections,
    given_arguments_only,
    leaves_execution,
)
from app.graphql.schema import build_schema

Signed = NewType("Signed", int)
# A scalar that refuses negative values by answering null for them.
SIGNED: dict[object, Any] = {
    Signed: strawberry.scalar(name="Signed", serialize=lambda value: None if value < 0 else value)
}


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Never(BasePermission):
    message = "never"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Item:
    name: str
    count: int
    colour: Colour
    note: str | None = None
    required: str = "set"
    signed: Signed = Signed(1)
    secret: str = strawberry.field(default="hidden", permission_classes=[Never])

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return f"later {self.name}"

    @strawberry.field
    def times(self, factor: int) -> int:
        return self.count * factor

    @strawberry.field
    def greet(self, greeting: str | None = None) -> str:
        return f"{greeting or 'hello'} {self.name}"


@dataclass
class Broken:
    """Not an Item: each read of a leaf fails or gives what the type refuses."""

    count: str = "not a number"
    colour: str = "GREEN"
    required: None = None

    @property
    def name(self) -> str:
        raise RuntimeError("the name could not be read")


@strawberry.type
class Box:
    """A type with no leaf to read in place."""

    @strawberry.field
    def explode(self) -> str:
        raise RuntimeError("the box exploded")

    @strawberry.field
    def extensions(self, info: strawberry.Info) -> str:
        return str(info.input_extensions)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [
            Item(name="a", count=1, colour=Colour.RED),
            Item(name="b", count=2, colour=Colour.BLUE, note="n"),
        ]

    @strawberry.field
    def broken(self) -> Item | None:
        return Broken()  # type: ignore[return-value]

    @strawberry.field
    def missing(self) -> Item | None:
        return Item(name="m", count=0, colour=Colour.RED, required=None)  # type: ignore[arg-type]

    @strawberry.field
    def echo(
        self, text: str | None = None, count: int | None = 3, maybe: strawberry.Maybe[str | None] = None
    ) -> str:
        return f"{text!r} {count!r} {maybe!r}"

    @strawberry.field
    def box(self) -> Box | None:
        return Box()

    @strawberry.field
    def negative(self) -> Item | None:
        return Item(name="n", count=-1, colour=Colour.RED, signed=Signed(-1))


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    plain = strawberry.Schema(query=Query, config=StrawberryConfig(scalar_map=SIGNED))
    short = strawberry.Schema(query=Query, config=StrawberryConfig(scalar_map=SIGNED))
    short.execution_context_class = leaves_execution(short._schema)
    given_arguments_only(short._schema)
    return plain, short


def _answer(schema: strawberry.Schema, document: str) -> tuple[Any, list[tuple[str, Any, Any]]]:
    result = asyncio.run(schema.execute(document))
    errors = [(error.message, error.path, error.locations) for error in result.errors or []]
    return result.data, errors


DOCUMENTS = {
    "leaves in order, with aliases and a repeat": "{ items { count colour n: name note name c2: count } }",
    "leaves beside resolvers, sync and async": "{ items { later name shout count times(factor: 3) colour } }",
    "__typename between leaves": "{ items { name __typename count } }",
    "a permission's refusal among leaves": "{ items { name secret count } }",
    "reads that fail or are refused": "{ broken { name count colour note } }",
    "a null for a non-null leaf": "{ missing { name required count } }",
    "a value its scalar answers null for": "{ negative { name signed } }",
    "one type selected twice, differently": "{ items { name } again: items { count colour } }",
    "an error in a type with no leaf read in place": "{ box { explode } }",
    "arguments left out": "{ echo }",
    "arguments given null": "{ echo(text: null, count: null, maybe: null) }",
    "arguments given values": '{ echo(text: "t", count: 4, maybe: "m") }',
    "an argument null by default under an object": '{ items { greet g: greet(greeting: "hi") } }',
    "fragments": "{ items { ...F count } } fragment F on Item { colour name }",
    "skipped and included": "{ items { name @skip(if: true) count @include(if: true) note } }",
}


@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_answers_as_graphql_core_would(document: str) -> None:
    plain, short = _schemas()
    data, errors = _answer(short, document)
    assert (data, errors) == _answer(plain, document)
    if data is not None and "items" in data:  # keys in the document's order, not reads first
        assert [list(item) for item in data["items"]] == [list(data["items"][0])] * 2


def test_the_failed_reads_are_reported_with_their_paths() -> None:
    _, short = _schemas()
    data, errors = _answer(short, DOCUMENTS["reads that fail or are refused"])
    assert data == {"broken": None}  # the non-null name failed: its object is null
    assert [(message, path) for message, path, _ in errors] == [
        ("the name could not be read", ["broken", "name"])
    ]
    data, errors = _answer(short, "{ broken { count } }")
    assert data == {"broken": None}
    assert errors[0][1] == ["broken", "count"]
    assert "Int cannot represent non-integer value" in errors[0][0]
    data, errors = _answer(short, "{ missing { note required } }")
    assert data == {"missing": None}
    assert errors == [
        ("Cannot return null for non-nullable field Item.required.", ["missing", "required"], errors[0][2])
    ]


def test_only_plain_attribute_leaves_are_read_in_place() -> None:
    plain, _ = _schemas()
    leaves = attribute_leaves(plain._schema)
    assert set(leaves["Item"]) == {"name", "count", "colour", "note", "required", "signed"}
    assert leaves["Item"]["note"][2] is False and leaves["Item"]["count"][2] is True
    assert "Query" not in leaves  # every root field has a resolver


def test_no_leaf_is_read_in_place_under_another_default_resolver() -> None:
    by_key = StrawberryConfig(default_resolver=lambda source, name: source[name], scalar_map=SIGNED)
    schema = strawberry.Schema(query=Query, config=by_key)
    assert attribute_leaves(schema._schema) == {}


def test_the_executor_passes_on_what_it_is_given() -> None:
    _, short = _schemas()
    result = asyncio.run(short.execute("{ box { extensions } }", operation_extensions={"trace": "t1"}))
    assert result.data == {"box": {"extensions": "{'trace': 't1'}"}}


def test_arguments_null_by_default_reach_strawberry_only_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from strawberry.types import arguments

    converted: set[str] = set()  # the arguments Strawberry converted
    convert = arguments.convert_argument

    def noted(*args: Any, path: tuple[str, ...] = (), **kwargs: Any) -> object:
        converted.update(path[:1])
        return convert(*args, path=path, **kwargs)

    monkeypatch.setattr(arguments, "convert_argument", noted)
    plain, short = _schemas()
    # text is null by default; count is 3 by default, so its null is passed on when given
    for document, by_strawberry, given_only in (
        ("{ echo }", {"text", "count"}, {"count"}),
        ("{ echo(text: null, count: null) }", {"text", "count"}, {"count"}),
        ('{ echo(text: "t", maybe: null) }', {"text", "count", "maybe"}, {"text", "count", "maybe"}),
        ("{ items { greet } }", {"greeting"}, set()),
    ):
        converted.clear()
        expected = _answer(plain, document)
        assert converted == by_strawberry
        converted.clear()
        assert _answer(short, document) == expected
        assert converted == given_only


def test_the_server_schema_reads_its_plain_leaves_in_place() -> None:
    schema = build_schema()
    execution: Any = schema.execution_context_class
    assert issubclass(execution, AttributeLeavesExecution)
    code_leaves = execution.leaves["GiftCardCode"]
    assert {"id", "codeType", "code", "expiresOn", "isMasked"} <= set(code_leaves)
    # a field that decides what to show by the caller's permissions has its resolver
    assert "availableBalance" not in execution.leaves["GiftCard"]


def test_a_resolver_middleware_gets_every_field() -> None:
    seen: list[str] = []

    def middleware(next_: Any, root: Any, info: Any, **kwargs: Any) -> Any:
        seen.append(info.field_name)
        return next_(root, info, **kwargs)

    _, short = _schemas()
    from graphql import execute, parse

    result = execute(
        short._schema,
        parse("{ items { name count } }"),
        middleware=[middleware],
        executor_class=short.execution_context_class,
    )
    assert not isinstance(result, GraphQLError) and result.data is not None  # type: ignore[union-attr]
    assert seen == ["items", "name", "count", "name", "count"]


def test_leaves_are_read_without_their_resolvers(monkeypatch: pytest.MonkeyPatch) -> None:
    from strawberry.types.field import StrawberryField

    resolved: list[str] = []
    get_result = StrawberryField.get_result

    def counted(self: StrawberryField, *args: Any, **kwargs: Any) -> Any:
        resolved.append(self.python_name)
        return get_result(self, *args, **kwargs)

    monkeypatch.setattr(StrawberryField, "get_result", counted)
    plain, short = _schemas()
    document = "{ items { name shout count } }"
    expected = _answer(plain, document)
    assert resolved == ["items", "name", "shout", "count", "name", "shout", "count"]
    resolved.clear()
    assert _answer(short, document) == expected
    assert resolved == ["items", "shout", "shout"]


FIXED = {
    "{ items { name } }": True,
    "query($n: Int) { items { times(factor: $n) name @include(if: true) } }": True,
    "query($n: Int) { items { name @include(if: true) times(factor: $n) } }": True,
    "query($n: Int) { items { ...F @skip(if: false) } more: items { times(factor: $n) } } "
    "fragment F on Item { name }": True,
    "query($x: Boolean!) { items @skip(if: $x) { name } }": False,
    "query($x: Boolean!) { items { ...F } } fragment F on Item { name @include(if: $x) }": False,
}


@pytest.mark.parametrize(("document", "fixed"), FIXED.items(), ids=list(FIXED))
def test_a_document_selects_alike_each_time_unless_a_directive_takes_a_variable(
    document: str, fixed: bool
) -> None:
    from graphql import parse

    assert fixed_selections(parse(document)) is fixed


FRAGMENT_ARGUMENTS = {  # graphql-core's experimental fragment arguments: the arguments select
    "query { items { ...F } } fragment F($x: Boolean = true) on Item { name }": False,
    "query { items { ...F(x: true) } } fragment F on Item { name }": False,
    "query { items { ...F } } fragment F on Item { name }": True,
}


@pytest.mark.parametrize(("document", "fixed"), FRAGMENT_ARGUMENTS.items(), ids=list(FRAGMENT_ARGUMENTS))
def test_fragments_with_arguments_select_by_them(document: str, fixed: bool) -> None:
    from graphql import parse

    assert fixed_selections(parse(document, experimental_fragment_arguments=True)) is fixed
