"""The access policy: ``permissions.yaml`` → :class:`Policy`, and the caller as a :class:`Principal`.

The policy answers what a principal may find, use and see. Code that needs a decision asks the
policy or the principal with a :class:`Permission` member; no permission name is compared by hand
anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from app.auth.throttle import Limits, parse_limits
from app.enums import CodeType
from app.errors import ConfigurationError, ForbiddenError, UnauthenticatedError


class Permission(StrEnum):
    """Permissions the server's own rules refer to; each must be in the catalogue."""

    FIND_BY_CODE = "FindGiftCardByCode"
    LIST_GIFT_CARDS = "ListGiftCards"
    USE_PHYSICAL = "UsePhysicalGiftCardCodes"
    USE_EXTERNAL = "UseExternalGiftCardCodes"
    USE_CRYPTO = "UseCryptoGiftCardCodes"
    VIEW_UNMASKED = "ViewUnmaskedGiftCardCodes"
    USE_SHORT_PERSONAL = "UseShortPersonalGiftCardCodes"
    CREATE_GIFT_CARD = "CreateGiftCard"
    EDIT_GIFT_CARD = "EditGiftCard"
    BLOCK_GIFT_CARD = "BlockGiftCard"
    DEACTIVATE_GIFT_CARD = "DeactivateGiftCard"
    RESERVE_CODES = "ReserveGiftCardCodes"
    TRANS_ADD = "GiftCardTransAdd"
    TRANS_USE = "GiftCardTransUse"
    TRANS_ADJUST = "GiftCardTransAdjust"
    TRANS_EXTERNAL = "GiftCardTransExternal"
    TRANS_IMPORT = "GiftCardTransImport"
    LIST_TRANSACTIONS = "ListGiftCardTransactions"
    VIEW_AUDIT_LOG = "ViewAuditLog"


@dataclass(frozen=True)
class Budget:
    """How many code misses plus attempts in flight a caller without ListGiftCards may have in each
    window, per token subject and per client address (``permissions.yaml``, a role's ``budget``)."""

    per_subject: Limits
    per_address: Limits


def _rate(limits: Limits) -> tuple[float, int]:
    """Orders limit sets by size: the rate the tightest window sustains, then the largest burst."""
    return min(item.amount / item.get_expiry() for item in limits), max(item.amount for item in limits)


class Visibility(Enum):
    HIDDEN = "hidden"  # left out of `codes`
    MASKED = "masked"  # last four characters only
    FULL = "full"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject and expanded permissions, client address, request id."""

    subject: str | None
    permissions: frozenset[str] = field(default_factory=frozenset)
    # Set per request (tokens are verified once and cached); rate limits count per address too.
    address: str | None = field(default=None, compare=False)
    budget: Budget | None = field(default=None, compare=False)  # None: the configured default
    request_id: str | None = field(default=None, compare=False)  # the audit trail records it

    @property
    def is_anonymous(self) -> bool:
        return self.subject is None

    def has(self, permission: Permission) -> bool:
        return permission.value in self.permissions

    @property
    def is_trusted(self) -> bool:
        """A caller that may list cards: it learns why a code or card was refused, and no code
        attempt budget applies to it."""
        return Permission.LIST_GIFT_CARDS.value in self.permissions

    def require(self, permission: Permission) -> None:
        if self.is_anonymous:
            raise UnauthenticatedError("a bearer token is required")
        if permission.value not in self.permissions:
            raise ForbiddenError(f"the token lacks the {permission.value} permission")


ANONYMOUS = Principal(subject=None)


# --- the file's shape ---------------------------------------------------------------------------


class _PermissionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str
    trust: Literal["low", "high"]


class _CodeTypeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    use: str
    unmask: str | None = None


class _BudgetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_subject: str
    per_address: str


class _RoleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    permissions: list[str]
    budget: _BudgetEntry | None = None


class _ClientEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    secret_hash: str
    roles: list[str]
    description: str = ""


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    permissions: dict[str, _PermissionEntry]
    code_types: dict[CodeType, _CodeTypeEntry]
    roles: dict[str, _RoleEntry] = {}
    clients: list[_ClientEntry] = []


@dataclass(frozen=True)
class CodeTypeRule:
    use: str
    unmask: str | None


@dataclass(frozen=True)
class Client:
    id: str
    secret_hash: str
    roles: tuple[str, ...]


@dataclass(frozen=True, eq=False)  # identity hash: the lru_caches below key on it
class Policy:
    catalogue: Mapping[str, str]  # permission name → trust level
    code_types: Mapping[CodeType, CodeTypeRule]
    roles: Mapping[str, frozenset[str]]
    clients: Mapping[str, Client]
    budgets: Mapping[str, Budget] = field(default_factory=dict)  # role → its code attempt budget

    def budget(self, roles: Iterable[str], default: Budget) -> Budget | None:
        """The largest budget of a token's roles, per key, a known role without one counting as
        ``default``; None for a token with no known role (the default applies)."""
        found = [self.budgets.get(role, default) for role in roles if role in self.roles]
        if not found:
            return None
        return Budget(
            per_subject=max((budget.per_subject for budget in found), key=_rate),
            per_address=max((budget.per_address for budget in found), key=_rate),
        )

    def expand(self, permissions: Iterable[str], roles: Iterable[str] = ()) -> frozenset[str]:
        """Token claims → known permission names; unknown names grant nothing."""
        granted = {name for name in permissions if name in self.catalogue}
        for role in roles:
            granted |= self.roles.get(role, frozenset())
        return frozenset(granted)

    def usable_code_types(self, principal: Principal) -> tuple[CodeType, ...]:
        return _usable(self, principal.permissions)

    def require_code_type(self, principal: Principal, code_type: CodeType, *, name_type: bool = True) -> None:
        """Refuse a code type the caller may not use: FORBIDDEN, naming the permission it lacks
        (and the type, unless ``name_type`` is false)."""
        if code_type in self.usable_code_types(principal):
            return
        needed = self.code_types[code_type].use
        codes = f" for {code_type.value} codes" if name_type else ""
        raise ForbiddenError(f"the token lacks the {needed} permission{codes}", field="codeType")

    def visibility(self, principal: Principal, code_type: CodeType) -> Visibility:
        return _visibilities(self, principal.permissions)[code_type]


@lru_cache(maxsize=256)
def _visibilities(policy: Policy, granted: frozenset[str]) -> dict[CodeType, Visibility]:
    result = {}
    for code_type in CodeType:
        rule = policy.code_types.get(code_type)
        if rule is None or rule.use not in granted:
            result[code_type] = Visibility.HIDDEN
        elif rule.unmask is not None and rule.unmask not in granted:
            result[code_type] = Visibility.MASKED
        else:
            result[code_type] = Visibility.FULL
    return result


@lru_cache(maxsize=256)
def _usable(policy: Policy, granted: frozenset[str]) -> tuple[CodeType, ...]:
    visible = _visibilities(policy, granted)
    return tuple(t for t in CodeType if visible[t] is not Visibility.HIDDEN)


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file; errors name the file and the line."""
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
    lines = _line_index(root)
    data = yaml.safe_load(text)

    def fail(location: tuple[Any, ...], message: str) -> ConfigurationError:
        return ConfigurationError(f"{path}:{_line_of(lines, location)}: {message}")

    try:
        parsed = _PolicyFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise fail(tuple(error["loc"]), f"{where}: {error['msg']}") from None

    catalogue = {name: entry.trust for name, entry in parsed.permissions.items()}
    for needed in Permission:
        if needed.value not in catalogue:
            raise fail(("permissions",), f"the catalogue lacks {needed.value}, which the server uses")

    def known(name: str, location: tuple[Any, ...]) -> str:
        if name not in catalogue:
            raise fail(location, f"unknown permission {name!r}")
        return name

    code_types = {}
    for code_type, rule in parsed.code_types.items():
        base = ("code_types", code_type.value)
        unmask = rule.unmask and known(rule.unmask, (*base, "unmask"))
        code_types[code_type] = CodeTypeRule(use=known(rule.use, (*base, "use")), unmask=unmask)
    missing = [t.value for t in CodeType if t not in code_types]
    if missing:
        raise fail(("code_types",), f"no rule for code type(s) {', '.join(missing)}")

    def limits(text: str, location: tuple[Any, ...]) -> Limits:
        try:
            return parse_limits(text, ".".join(location))
        except ConfigurationError as exc:
            raise fail(location, str(exc)) from None

    roles, budgets = {}, {}
    for role, entry in parsed.roles.items():
        roles[role] = frozenset(
            known(name, ("roles", role, "permissions", index)) for index, name in enumerate(entry.permissions)
        )
        if entry.budget is not None:
            budgets[role] = Budget(
                per_subject=limits(entry.budget.per_subject, ("roles", role, "budget", "per_subject")),
                per_address=limits(entry.budget.per_address, ("roles", role, "budget", "per_address")),
            )

    clients = {}
    for index, client in enumerate(parsed.clients):
        for role_index, role in enumerate(client.roles):
            if role not in roles:
                raise fail(("clients", index, "roles", role_index), f"unknown role {role!r}")
        if client.id in clients:
            raise fail(("clients", index, "id"), f"duplicate client id {client.id!r}")
        clients[client.id] = Client(client.id, client.secret_hash, tuple(client.roles))

    return Policy(catalogue=catalogue, code_types=code_types, roles=roles, clients=clients, budgets=budgets)


def _line_index(root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Map each path in the document (keys and list indexes) to its 1-based line."""
    index: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        index[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, key.value)
                walk(value, child)
                index[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for position, item in enumerate(node.value):
                walk(item, (*path, position))

    walk(root, ())
    return index


def _line_of(lines: dict[tuple[Any, ...], int], location: tuple[Any, ...]) -> int:
    path = tuple(location)
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)
