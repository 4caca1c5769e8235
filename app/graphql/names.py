"""The schema's names: Strawberry's, each worked out once."""

from __future__ import annotations

from strawberry.schema.name_converter import NameConverter


class CachedNames(NameConverter):
    """Strawberry's names, each worked out once: it converts every argument's Python name to its
    GraphQL name again on every request (a resolver's arguments, given or not)."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._names.get(name)
        if converted is None:  # the schema's own names only: as many as it has
            converted = self._names[name] = super().apply_naming_config(name)
        return converted
