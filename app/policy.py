"""The access policy (:class:`Policy`, read from ``permissions.yaml`` by :mod:`app.policy_file`): what
the caller, a :class:`Principal`, may find, use and see. Decisions are asked of the policy or the
principal with a :class:`Permission` member; no permission name is compared by hand elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from functools import cached_property, lru_cache
from hashlib import sha256

from app.auth.throttle import Limits
from app.enums import CodeType
from app.errors import ForbiddenError, UnauthenticatedError
from app.stores import DEFAULT_STORE


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
    ALL_STORES = "AllStores"
    MANAGE_PROGRAMS = "ManagePrograms"
    PRINT_CERTIFICATE = "PrintGiftCardCertificate"


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
    # The token's stores (its `stores` claim or its client's entry; the default store without one).
    stores: frozenset[str] = frozenset({DEFAULT_STORE})
    # Set per request when the claim names a store the server does not know: every use refuses.
    unknown_store: str | None = field(default=None, compare=False)

    @property
    def is_anonymous(self) -> bool:
        return self.subject is None

    def has(self, permission: Permission) -> bool:
        return permission.value in self.permissions

    @property
    def is_trusted(self) -> bool:
        """A caller that may list cards: it learns why a code or card was refused, and no code
        attempt budget applies to it."""
        return self.has(Permission.LIST_GIFT_CARDS)

    def store_ids(self) -> tuple[str, ...] | None:
        """The stores the caller acts on, sorted; None for every store (``AllStores``). FORBIDDEN,
        naming the claim, when the claim names a store the server does not know."""
        if self.unknown_store is not None:
            raise ForbiddenError(
                f"the token's stores claim names a store this server does not know: {self.unknown_store}",
                field="stores",
            )
        return None if self.has(Permission.ALL_STORES) else self._sorted_stores

    @cached_property
    def _sorted_stores(self) -> tuple[str, ...]:
        return tuple(sorted(self.stores))

    @cached_property
    def store_key(self) -> str:
        """The caller's stores as one short string, for keys that must not cross stores (idempotency
        keys): ``*`` for every store, else the ids joined, or their digest."""
        if self.has(Permission.ALL_STORES):
            return "*"
        joined = ",".join(self._sorted_stores)
        return joined if len(joined) <= 64 else "#" + sha256(joined.encode()).hexdigest()[:40]

    def with_known_stores(self, unknown: Callable[[Iterable[str]], str | None]) -> Principal:
        """The caller as a request sees it: ``unknown_store`` set when its stores claim names a store
        ``unknown`` (the store directory's check) does not know; unchanged with ``AllStores``."""
        if self.has(Permission.ALL_STORES):
            return self
        missing = unknown(self.stores)
        return self if missing is None else replace(self, unknown_store=missing)

    def require(self, permission: Permission) -> None:
        if self.is_anonymous:
            raise UnauthenticatedError("a bearer token is required")
        if not self.has(permission):
            raise ForbiddenError(f"the token lacks the {permission.value} permission")


ANONYMOUS = Principal(subject=None)


@dataclass(frozen=True)
class CodeTypeRule:
    use: str
    unmask: str | None


@dataclass(frozen=True)
class Client:
    id: str
    secret_hash: str
    roles: tuple[str, ...]
    stores: tuple[str, ...] | None = None  # its tokens' stores claim; None: the default store


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
        return _usable(self, principal.permissions)  # asked on every lookup: cached

    def searched_code_types(
        self, principal: Principal, code_type: CodeType | None, field: str | None = None
    ) -> tuple[CodeType, ...]:
        """The code types a search by code covers: the one named (its Use… permission needed), else
        every type the caller may use; FORBIDDEN (naming ``field``) when it may use none."""
        if code_type is not None:
            self.require_code_type(principal, code_type)
            return (code_type,)
        usable = self.usable_code_types(principal)
        if not usable:
            raise ForbiddenError("the token lacks every Use…GiftCardCodes permission", field=field)
        return usable

    def require_code_type(self, principal: Principal, code_type: CodeType, *, name_type: bool = True) -> None:
        """Refuse a code type the caller may not use: FORBIDDEN, naming the permission it lacks
        (and the type, unless ``name_type`` is false)."""
        if code_type in self.usable_code_types(principal):
            return
        needed = self.code_types[code_type].use
        codes = f" for {code_type.value} codes" if name_type else ""
        raise ForbiddenError(f"the token lacks the {needed} permission{codes}", field="code_type")

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
