"""Input types built by a plan made once, through Strawberry's ``from_input`` hook.

For every request Strawberry converts an input value field by field, working out again each field's
GraphQL name and resolved type (its largest cost on a money request). For an input whose fields are
all leaves (scalars and enums, optional or not) there is nothing to convert: graphql-core has
coerced each value already, and Strawberry would pass it on as it is. :func:`flat_input` gives
such a type a builder that does the same with the names worked out once: each field given under its
Python name, a nullable field without a default as None when left out, the rest to their defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING
from enum import Enum
from typing import Any, TypeVar

from strawberry import ID
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition

T = TypeVar("T")
# The scalars whose values graphql-core hands over as Strawberry would.
_LEAVES = (str, bool, int, float, ID)


def flat_input(cls: type[T]) -> type[T]:
    """Give the Strawberry input type ``cls``, all of whose fields are leaves, the planned builder."""
    definition = get_object_definition(cls, strict=True)
    for field in definition.fields:
        if not _is_leaf(field.resolve_type(type_definition=definition)):
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a scalar or an enum")
    unset = {
        field.python_name: None
        for field in definition.fields
        if field.default is MISSING and field.default_factory is MISSING
    }
    plan: list[Any] = [None, ()]  # the schema's name converter, and (GraphQL name, Python name)s

    def build(target: type, value: Mapping[str, Any], context: InputContext) -> Any:
        converter, names = plan
        if converter is not context.config.name_converter:  # the first request of a schema
            converter = context.config.name_converter
            names = tuple((converter.from_field(field), field.python_name) for field in definition.fields)
            plan[:] = converter, names
        given = {python: value[graphql] for graphql, python in names if graphql in value}
        return target(**{**unset, **given})

    definition.from_input = build
    return cls


def _is_leaf(annotation: object) -> bool:
    if isinstance(annotation, StrawberryOptional):
        annotation = annotation.of_type
    if isinstance(annotation, StrawberryEnumDefinition):
        return True
    return annotation in _LEAVES or (isinstance(annotation, type) and issubclass(annotation, Enum))
