"""Variable errors that say where and what was expected, never what was sent.

graphql-core writes ``Variable '$t' has invalid value at .amount: String cannot represent a non string
value: 10``; the value in it could be a gift card code. :func:`explain` turns that into
``trans.amount: expected String, got a number``: the path from the argument that takes the variable,
the expected type, and only the kind of value that came."""

from __future__ import annotations

import re

from graphql import ArgumentNode, ObjectFieldNode, Source, VariableDefinitionNode, VariableNode, parse, visit
from graphql.language import Visitor

_INVALID = re.compile(
    r"""^Variable '\$(?P<name>\w+)' has invalid value(?: at (?P<path>\S+))?: (?P<reason>.*)$""", re.S
)
_CANNOT_REPRESENT = re.compile(
    r"^(?P<type>\w+) cannot represent (?:a )?non[ -].*?value: (?P<value>.*)$", re.S
)
_REQUIRED_FIELD = re.compile(r"to include required field '(?P<field>\w+)'")
_UNKNOWN_FIELD = re.compile(r"not to include unknown field '(?P<field>[^']*)'")
_ENUM = re.compile(r"in '(?P<enum>\w+)' enum|^Enum '(?P<enum2>\w+)' cannot")
_SCALAR = re.compile(r"cannot represent an? (?P<type>[A-Z]\w*): (?P<value>.*)$", re.S)
_OBJECT = re.compile(r"^Expected value of type '(?P<type>\w+)' to be an object, found: (?P<value>.*)$", re.S)
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")  # a field name safe to repeat back
_KINDS = (("{", "an object"), ("[", "a list"), ("'", "a string"), ('"', "a string"), ("True", "a boolean"))


def explain(message: str, source: Source | None) -> str | None:
    """The client's message for a graphql-core variable error, or None if ``message`` is not one."""
    invalid = _INVALID.match(message)
    if invalid is None:
        return None
    name, reason = invalid.group("name"), invalid.group("reason")
    where = _argument_path(source, name) or f"${name}"
    path = where + (invalid.group("path") or "")
    if "to be provided" in reason or ("not to be None" in reason and not invalid.group("path")):
        return f"${name} is required"
    if "not to be None" in reason:
        return f"{path} is required"
    if field := _REQUIRED_FIELD.search(reason):
        return f"{path}.{field.group('field')} is required"
    if field := _UNKNOWN_FIELD.search(reason):
        unknown = field.group("field")
        return f"{path}: unknown field {unknown}" if _NAME.match(unknown) else f"{path}: an unknown field"
    if enum := _ENUM.search(reason):
        return f"{path}: expected a {enum.group('enum') or enum.group('enum2')} value"
    if wrong := _CANNOT_REPRESENT.match(reason) or _OBJECT.match(reason) or _SCALAR.search(reason):
        return f"{path}: expected {wrong.group('type')}, got {_kind(wrong.group('value'))}"
    return f"{path}: the value has the wrong type"


def _kind(printed: str) -> str:
    """What kind of value graphql-core printed (its Python repr), never the value."""
    for start, kind in _KINDS:
        if printed.startswith(start):
            return kind
    if printed.startswith("False"):
        return "a boolean"
    return "a number" if printed[:1].isdigit() or printed[:1] == "-" else "a value of another type"


def _argument_path(source: Source | None, variable: str) -> str | None:
    """Where the document first passes ``$variable``: ``trans``, or ``trans.amount`` inside an object."""
    if source is None:
        return None
    try:
        document = parse(source)
    except Exception:  # the error is about variables: the document did parse once already
        return None
    found: list[str] = []

    class _Usage(Visitor):
        def enter_variable(
            self, node: VariableNode, _key: object, parent: object, _path: object, ancestors: list[object]
        ) -> object:
            if found or node.name.value != variable or isinstance(parent, VariableDefinitionNode):
                return None
            nodes = [*ancestors, parent]
            names = [a.name.value for a in nodes if isinstance(a, ArgumentNode | ObjectFieldNode)]
            if names:
                found.append(".".join(names))
            return None

    visit(document, _Usage())
    return found[0] if found else None
