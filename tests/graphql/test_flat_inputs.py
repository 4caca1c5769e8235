"""A flat input type built by its plan (app.graphql.flat_inputs) is the value Strawberry's own
conversion builds, field for field, for the values graphql-core coerces from what clients send."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql.utilities import coerce_input_value
from strawberry.types.arguments import convert_argument
from strawberry.types.base import get_object_definition

from app.graphql.flat_inputs import flat_input
from app.graphql.schema import build_schema
from app.graphql.transactions import GiftCardTransInput

SENT = [
    {"transType": "USE", "amount": "-1.00"},
    {"transType": "ADD", "amount": "5", "codeType": "PHYSICAL", "code": "ABCD1234", "pin": "1234"},
    {
        "transType": "USE",
        "amount": "-0.01",
        "giftcardId": "123",
        "authorizeOnly": True,
        "allowPartial": True,
        "sourceId": "s",
        "refNo": "r",
        "locationId": "l",
        "note": "n",
        "storeId": "shop",
    },
    {"transType": "USE", "amount": "-2", "token": "tok", "codeType": None, "code": None, "pin": None},
    {"transType": "USE", "amount": "-2", "authorizeOnly": False, "storeId": None, "giftcardId": None},
]


def _converted(schema: Any, sent: dict[str, Any], planned: bool) -> Any:
    definition = get_object_definition(GiftCardTransInput, strict=True)
    plan = definition.from_input
    coerced = coerce_input_value(sent, schema._schema.get_type("GiftCardTransInput"))
    try:
        if not planned:
            definition.from_input = None  # Strawberry's own conversion
        return convert_argument(
            coerced, GiftCardTransInput, schema.schema_converter.scalar_registry, schema.config
        )
    finally:
        definition.from_input = plan


@pytest.mark.parametrize("sent", SENT)
def test_the_planned_input_is_what_strawberry_builds(sent):
    schema = build_schema()

    planned, strawberrys = _converted(schema, sent, True), _converted(schema, sent, False)

    assert type(planned) is GiftCardTransInput
    assert vars(planned) == vars(strawberrys)
    assert planned.amount == sent["amount"] and planned.trans_type.name == sent["transType"]


def test_an_input_with_a_field_that_is_not_a_leaf_is_refused():
    @strawberry.input
    class Nested:
        items: list[str]

    with pytest.raises(TypeError, match=r"Nested\.items is not a scalar or an enum"):
        flat_input(Nested)


def test_a_nullable_field_without_a_default_is_none_when_left_out_as_strawberry_has_it():
    @strawberry.input
    class Loose:
        name: str | None
        count: int = 3

    schema = build_schema()
    registry, config = schema.schema_converter.scalar_registry, schema.config
    strawberrys = convert_argument({"count": 4}, Loose, registry, config)
    flat_input(Loose)

    planned = convert_argument({"count": 4}, Loose, registry, config)

    assert vars(planned) == vars(strawberrys) == {"name": None, "count": 4}
    assert vars(convert_argument({"name": "x"}, Loose, registry, config)) == {"name": "x", "count": 3}
