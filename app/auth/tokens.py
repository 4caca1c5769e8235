"""Bearer tokens (PyJWT): verify one into a :class:`Principal`, or issue one for development.

Algorithms come from settings, never from the token; HS* verifies with ``GIFTCARDS_JWT_SECRET``,
RS*/ES*/PS* with a public key file or a JWKS URL (the token's ``kid`` picks the key). Every failure
is one :class:`InvalidTokenError` with one generic message; the reason is logged at debug level only.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import jwt

from app.auth.throttle import parse_limits
from app.config import Settings
from app.errors import ConfigurationError, InvalidTokenError
from app.policy import ANONYMOUS, Budget, Policy, Principal
from app.stores import DEFAULT_STORE, MAX_STORES_PER_TOKEN, is_store_id

log = logging.getLogger(__name__)

INVALID_TOKEN_MESSAGE = "The bearer token is invalid or expired."
_CACHE_SIZE = 4096
MAX_SUBJECT_LENGTH = 128
# With a JWKS URL the key set (single keys are not cached on their own) is fetched again, and a
# cached token checked again, after this long: a key the identity provider withdraws stops working.
_JWKS_RECHECK_SECONDS = 300


class TokenVerifier:
    def __init__(self, settings: Settings, policy: Policy) -> None:
        self._settings = settings
        self._policy = policy
        default = parse_limits(settings.code_attempt_limits, "GIFTCARDS_CODE_ATTEMPT_LIMITS")
        self._default_budget = Budget(per_subject=default, per_address=default)
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        if settings.uses_hmac_tokens:
            if settings.jwt_secret is None:
                raise ConfigurationError("GIFTCARDS_JWT_SECRET is not set")
            self._key = settings.jwt_secret.get_secret_value()
        elif settings.jwt_public_key_file is not None:
            try:
                self._key = settings.jwt_public_key_file.read_bytes()
            except OSError as exc:
                raise ConfigurationError(
                    f"GIFTCARDS_JWT_PUBLIC_KEY_FILE: cannot read {settings.jwt_public_key_file}"
                    f" ({exc.strerror})"
                ) from None
        elif settings.jwt_jwks_url is not None:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, lifespan=_JWKS_RECHECK_SECONDS, timeout=5)
        else:
            raise ConfigurationError(
                "public-key algorithms need GIFTCARDS_JWT_PUBLIC_KEY_FILE or GIFTCARDS_JWT_JWKS_URL"
            )
        # Verified tokens, until they expire: the same front-end token arrives on every request.
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @property
    def fetches_keys(self) -> bool:
        """True when verifying may fetch a key set over the network (call it off the event loop)."""
        return self._jwks is not None

    def principal_from_header(self, authorization: str | None) -> Principal:
        """``Authorization`` header → principal; no header is the anonymous principal."""
        if authorization is None:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidTokenError(INVALID_TOKEN_MESSAGE)
        return self.verify(token.strip())

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._key
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self._settings.jwt_algorithms),
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=self._settings.jwt_leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            principal = self._principal(claims)
            expires = float(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
            log.debug("token refused: %s", type(exc).__name__)
            raise InvalidTokenError(INVALID_TOKEN_MESSAGE) from None
        if self._jwks is not None:
            expires = min(expires, now + _JWKS_RECHECK_SECONDS)
        # Oldest first out; with JWKS this runs in worker threads, so tolerate a racing eviction.
        self._cache[token] = (principal, expires)
        with contextlib.suppress(KeyError):
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return principal

    def _principal(self, claims: dict[str, Any]) -> Principal:
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise ValueError(f"sub must be a string of 1 to {MAX_SUBJECT_LENGTH} characters")
        names = _string_list(claims.get("permissions", []), "permissions")
        scope = claims.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise ValueError("scope must be a string")
        names += (scope or "").split()
        roles = _string_list(claims.get("roles", []), "roles")
        # A token from /oauth/token carries the permissions granted, not roles: its budget is its
        # client's roles' (the subject is the client id). The roles grant nothing here.
        client = self._policy.clients.get(subject) if not roles else None
        budget_roles = client.roles if client is not None else roles
        if "stores" in claims:
            stores: Iterable[str] = _stores(claims)
        elif client is not None and client.stores is not None:
            stores = client.stores
        else:
            stores = (DEFAULT_STORE,)
        return Principal(
            subject=subject,
            permissions=self._policy.expand(names, roles),
            budget=self._policy.budget(budget_roles, self._default_budget),
            stores=frozenset(stores),
        )


def _stores(claims: dict[str, Any]) -> list[str]:
    """The ``stores`` claim: an array of store ids (empty: no store at all)."""
    stores = _string_list(claims["stores"], "stores")
    if len(stores) > MAX_STORES_PER_TOKEN or not all(is_store_id(item) for item in stores):
        raise ValueError(f"stores must hold at most {MAX_STORES_PER_TOKEN} store ids")
    return stores


def _string_list(value: Any, claim: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{claim} must be an array of strings")
    return list(value)


def issue_token(  # noqa: PLR0913  (the claims a development token may carry, each by keyword)
    settings: Settings,
    policy: Policy,
    subject: str,
    *,
    permissions: Iterable[str] = (),
    roles: Iterable[str] = (),
    ttl_seconds: int = 3600,
    stores: Iterable[str] | None = None,
) -> str:
    """Sign a token with the configured HMAC secret (development and self-hosted use)."""
    if not settings.uses_hmac_tokens or settings.jwt_secret is None:
        raise ConfigurationError(
            "tokens can only be issued with an HMAC secret; with RS/ES keys your identity "
            "provider issues them"
        )
    if ttl_seconds <= 0 or ttl_seconds > settings.token_max_ttl_seconds:
        raise ConfigurationError(f"ttl must be between 1 second and {settings.token_max_ttl_seconds} seconds")
    permissions, roles = list(permissions), list(roles)
    unknown = [name for name in permissions if name not in policy.catalogue]
    unknown += [f"role {name}" for name in roles if name not in policy.roles]
    if unknown:
        raise ConfigurationError(f"unknown permission or role: {', '.join(unknown)}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "permissions": permissions,
    }
    if roles:
        claims["roles"] = roles
    if stores is not None:
        claims["stores"] = list(dict.fromkeys(stores))
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithms[0])
