"""Reading ``permissions.yaml`` into a :class:`~app.policy.Policy`: the file's shape, checked by
pydantic, then every name it refers to; an error names the file and the line at fault."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from app.auth.throttle import Limits, parse_limits
from app.enums import CodeType
from app.errors import ConfigurationError
from app.policy import Budget, Client, CodeTypeRule, Permission, Policy
from app.stores import MAX_STORES_PER_TOKEN, STORE_ID_RULE, is_store_id

Location = tuple[Any, ...]  # a path in the document: keys and list indexes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not ignored


class _PermissionEntry(_Strict):
    description: str
    trust: Literal["low", "high"]


class _CodeTypeEntry(_Strict):
    use: str
    unmask: str | None = None


class _BudgetEntry(_Strict):
    per_subject: str
    per_address: str


class _RoleEntry(_Strict):
    description: str = ""
    permissions: list[str]
    budget: _BudgetEntry | None = None


class _ClientEntry(_Strict):
    id: str
    secret_hash: str
    roles: list[str]
    stores: list[str] | None = None  # its tokens' stores claim; left out: the default store
    description: str = ""


class _PolicyFile(_Strict):
    permissions: dict[str, _PermissionEntry]
    code_types: dict[CodeType, _CodeTypeEntry]
    roles: dict[str, _RoleEntry] = {}
    clients: list[_ClientEntry] = []


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file; errors name the file and the line."""
    text, lines = _read(path)
    checks = _Checks(path, lines)
    try:
        parsed = _PolicyFile.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise checks.fail(tuple(error["loc"]), f"{where}: {error['msg']}") from None
    checks = replace(checks, catalogue={name: entry.trust for name, entry in parsed.permissions.items()})
    for needed in Permission:
        if needed.value not in checks.catalogue:
            raise checks.fail(("permissions",), f"the catalogue lacks {needed.value}, which the server uses")
    code_types = _code_types(parsed, checks)
    roles, budgets = _roles(parsed, checks)
    return Policy(checks.catalogue, code_types, roles, _clients(parsed, roles, checks), budgets)


def _read(path: Path) -> tuple[str, dict[Location, int]]:
    """The file's text and the line of each part of it; its errors are the file's, not a part's."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the policy file ({exc.strerror})") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
    if root is None:
        raise ConfigurationError(f"{path}: the policy file is empty")
    return text, _line_index(root)


@dataclass(frozen=True)
class _Checks:
    """The file being read, to name it and a line in errors, and the permission catalogue it gives."""

    path: Path
    lines: dict[Location, int]
    catalogue: dict[str, str] = field(default_factory=dict)  # permission name → trust level

    def fail(self, location: Location, message: str) -> ConfigurationError:
        while location not in self.lines and location:  # a part left out: its parent's line
            location = location[:-1]
        return ConfigurationError(f"{self.path}:{self.lines.get(location, 1)}: {message}")

    def known(self, name: str, location: Location) -> str:
        if name not in self.catalogue:
            raise self.fail(location, f"unknown permission {name!r}")
        return name

    def limits(self, text: str, location: Location) -> Limits:
        try:
            return parse_limits(text, ".".join(location))
        except ConfigurationError as exc:
            raise self.fail(location, str(exc)) from None


def _code_types(parsed: _PolicyFile, checks: _Checks) -> dict[CodeType, CodeTypeRule]:
    code_types = {}
    for code_type, rule in parsed.code_types.items():
        base = ("code_types", code_type.value)
        unmask = rule.unmask and checks.known(rule.unmask, (*base, "unmask"))
        code_types[code_type] = CodeTypeRule(use=checks.known(rule.use, (*base, "use")), unmask=unmask)
    missing = [t.value for t in CodeType if t not in code_types]
    if missing:
        raise checks.fail(("code_types",), f"no rule for code type(s) {', '.join(missing)}")
    return code_types


def _roles(parsed: _PolicyFile, checks: _Checks) -> tuple[dict[str, frozenset[str]], dict[str, Budget]]:
    """Each role's permissions, and the code attempt budget of the roles that have one."""
    roles, budgets = {}, {}
    for role, entry in parsed.roles.items():
        roles[role] = frozenset(
            checks.known(name, ("roles", role, "permissions", index))
            for index, name in enumerate(entry.permissions)
        )
        if entry.budget is not None:
            budgets[role] = Budget(
                per_subject=checks.limits(entry.budget.per_subject, ("roles", role, "budget", "per_subject")),
                per_address=checks.limits(entry.budget.per_address, ("roles", role, "budget", "per_address")),
            )
    return roles, budgets


def _clients(parsed: _PolicyFile, roles: dict[str, frozenset[str]], checks: _Checks) -> dict[str, Client]:
    clients: dict[str, Client] = {}
    for index, client in enumerate(parsed.clients):
        for role_index, role in enumerate(client.roles):
            if role not in roles:
                raise checks.fail(("clients", index, "roles", role_index), f"unknown role {role!r}")
        if client.id in clients:
            raise checks.fail(("clients", index, "id"), f"duplicate client id {client.id!r}")
        stores = None if client.stores is None else _client_stores(client.stores, ("clients", index), checks)
        clients[client.id] = Client(client.id, client.secret_hash, tuple(client.roles), stores)
    return clients


def _client_stores(stores: list[str], location: Location, checks: _Checks) -> tuple[str, ...]:
    if len(stores) > MAX_STORES_PER_TOKEN:
        raise checks.fail((*location, "stores"), f"at most {MAX_STORES_PER_TOKEN} stores per client")
    for position, store_id in enumerate(stores):
        if not is_store_id(store_id):
            raise checks.fail(
                (*location, "stores", position),
                f"{store_id!r} is not a store id: {STORE_ID_RULE}",
            )
    return tuple(dict.fromkeys(stores))


def _line_index(node: yaml.Node, path: Location = ()) -> dict[Location, int]:
    """Map each path in the document (keys and list indexes) to its 1-based line; a key's is its own."""
    index = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            index |= _line_index(value, (*path, key.value))
            index[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            index |= _line_index(item, (*path, position))
    return index
