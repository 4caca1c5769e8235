"""The token endpoint of self-hosted (HS*) deployments: OAuth2 client credentials (RFC 6749 §4.4).

A client registered in ``permissions.yaml`` trades its id and secret for a short-lived bearer token
that carries its permissions, or the subset its ``scope`` names, and the stores its entry names
(as the ``stores`` claim; an entry without stores issues no claim, so the default store applies).

Failed client authentications are counted per client id and per address: each verification takes
an argon2 slot (a bounded number per process; beyond it, 503 with ``Retry-After``), then reserves a
unit of both budgets before argon2 runs, kept unless the secret is right. So however many guesses
arrive together, no more than the limit are verified in a window; a key out of units is refused
before any secret is verified, right ones included. Unknown clients and wrong secrets get the same
answer after the same argon2 work.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from anyio.to_thread import run_sync

from app.auth.clients import CLIENT_ID
from app.auth.gate import VerificationGate
from app.auth.secrets import dummy_client_secret_hash, is_client_secret_hash, verify_client_secret
from app.auth.throttle import Throttle
from app.auth.tokens import issue_token
from app.config import Settings
from app.errors import BusyError, ConfigurationError, RateLimitedError
from app.policy import Client, Policy

log = logging.getLogger("app.oauth")

PATH = "/oauth/token"
GRANT_TYPE = "client_credentials"
FORM = "application/x-www-form-urlencoded"
BASIC_CHALLENGE = 'Basic realm="giftcards", charset="UTF-8"'
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$")  # RFC 6749 §3.3
_MAX_FIELDS = 16


@dataclass(frozen=True)
class TokenRequest:
    method: str
    content_type: str | None
    authorization: str | None
    body: bytes | None  # None: larger than GIFTCARDS_MAX_BODY_BYTES
    address: str | None


@dataclass(frozen=True)
class TokenReply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class OAuthError(Exception):
    """A refusal in the RFC 6749 §5.2 shape: ``{"error", "error_description"}``."""

    def __init__(
        self, status: int, error: str, description: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(description)
        body = {"error": error, "error_description": description}
        self.reply = TokenReply(status, body, {**NO_STORE, **(headers or {})})


def _invalid_request(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


def _invalid_client(description: str) -> OAuthError:
    # HTTP requires a challenge on every 401; RFC 6749 §5.2 asks for it when Basic was tried.
    return OAuthError(401, "invalid_client", description, {"www-authenticate": BASIC_CHALLENGE})


def token_endpoint(
    settings: Settings, policy: Policy, throttle: Throttle, gate: VerificationGate
) -> TokenEndpoint | None:
    """The endpoint of an HS* deployment; None (no route) when an identity provider issues tokens."""
    if settings.uses_hmac_tokens:
        return TokenEndpoint(settings, policy, throttle, gate)
    if policy.clients:
        log.warning(
            "%s registers %d client(s), but the token endpoint is off: with %s tokens are issued "
            "by your identity provider",
            settings.permissions_file,
            len(policy.clients),
            settings.jwt_algorithms[0],
        )
    return None


class TokenEndpoint:
    def __init__(
        self, settings: Settings, policy: Policy, throttle: Throttle, gate: VerificationGate
    ) -> None:
        if not settings.uses_hmac_tokens or settings.jwt_secret is None:
            raise ConfigurationError("the token endpoint needs HS* tokens and GIFTCARDS_JWT_SECRET")
        for client in policy.clients.values():
            if not is_client_secret_hash(client.secret_hash):
                raise ConfigurationError(
                    f"{settings.permissions_file}: client {client.id!r}: secret_hash is not an argon2 "
                    "hash; register clients with `giftcards client add`"
                )
        self._settings = settings
        self._policy = policy
        self._throttle = throttle
        self._gate = gate
        self._ttl = min(settings.issued_token_ttl_seconds, settings.token_max_ttl_seconds)
        # Made now, so that the first unknown client costs what a known one does.
        dummy_client_secret_hash()

    async def respond(self, request: TokenRequest) -> TokenReply:
        try:
            return await self._exchange(request)
        except OAuthError as refusal:
            return refusal.reply

    async def _exchange(self, request: TokenRequest) -> TokenReply:
        if request.method != "POST":
            raise OAuthError(
                405, "invalid_request", "the token endpoint accepts POST only", {"allow": "POST"}
            )
        if request.body is None:
            raise OAuthError(
                413, "invalid_request", f"the request body exceeds {self._settings.max_body_bytes} bytes"
            )
        form = _read_form(request.content_type, request.body)
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise _invalid_request("grant_type is required")
        if grant_type != GRANT_TYPE:
            raise OAuthError(400, "unsupported_grant_type", f"only the {GRANT_TYPE} grant is supported")
        client_id, secret = _credentials(request.authorization, form)
        client = await self._authenticate(client_id, secret, request.address)
        granted = sorted(self._granted(client, form.get("scope")))
        token = issue_token(
            self._settings,
            self._policy,
            client.id,
            permissions=granted,
            ttl_seconds=self._ttl,
            stores=client.stores,  # none in the entry: no claim, so the default store applies
        )
        log.info("token issued to client %s (%d permissions)", client.id, len(granted))
        scope = " ".join(granted)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self._ttl, "scope": scope}
        return TokenReply(200, body, dict(NO_STORE))

    async def _authenticate(self, client_id: str | None, secret: str, address: str | None) -> Client:
        # Ids that cannot be registered get no counter of their own; the address still counts.
        keys = [
            ("client", client_id if client_id and CLIENT_ID.fullmatch(client_id) else None),
            ("address", address),
        ]
        client = self._policy.clients.get(client_id) if client_id else None
        try:
            verified = await run_sync(self._check, keys, client_id, secret, client)
        except (RateLimitedError, BusyError) as exc:
            headers = {"retry-after": str(exc.retry_after)}
            if isinstance(exc, BusyError):
                log.warning("token endpoint: every argon2 slot is busy (address %s)", address)
                busy = "too many authentications at once; try again shortly"
                raise OAuthError(503, "temporarily_unavailable", busy, headers) from None
            log.warning("token endpoint: too many failed client authentications (address %s)", address)
            raise OAuthError(429, "slow_down", "too many failed attempts; try again later", headers) from None
        if verified and client is not None:
            return client
        who = f"client {client.id}" if client else "no such client"
        log.info("client authentication failed (%s, address %s)", who, address)
        raise _invalid_client("client authentication failed")

    def _check(
        self, keys: list[tuple[str, str | None]], client_id: str | None, secret: str, client: Client | None
    ) -> bool:
        """Whether the secret is right; in a worker thread (argon2 is slow on purpose). The slot is
        taken first (or BusyError, nothing counted), so reservations in flight never outnumber slots."""
        with self._gate.admit():
            reservation = self._throttle.reserve(keys)
            if client_id is None:
                return False
            # Unknown clients are verified against a dummy hash: same answer, same time.
            verified = verify_client_secret(secret, client.secret_hash if client else None)
            if verified and client is not None:
                reservation.give_back()
            return verified

    def _granted(self, client: Client, scope: str | None) -> frozenset[str]:
        allowed = self._policy.expand((), client.roles)
        if scope is None:
            return allowed
        if not _SCOPE.fullmatch(scope):
            raise OAuthError(400, "invalid_scope", "scope is a space-separated list of permission names")
        asked = frozenset(scope.split(" "))
        if not asked <= allowed:
            raise OAuthError(400, "invalid_scope", "the scope names permissions this client does not have")
        return asked


def _read_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The form body → parameters; empty values count as absent, repeats are refused (RFC 6749 §3.2)."""
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != FORM:
        raise _invalid_request(f"the request body must be {FORM}")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise _invalid_request("the request body must be UTF-8")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError included
        raise _invalid_request(f"the request body is not a valid {FORM} form") from None
    if len({name for name, _ in pairs}) < len(pairs):
        raise _invalid_request("request parameters must not be repeated")
    return {name: value for name, value in pairs if value}


def _credentials(authorization: str | None, form: Mapping[str, str]) -> tuple[str | None, str]:
    """(client id, secret) from HTTP Basic (client_secret_basic) or the body (client_secret_post)."""
    if authorization is None:
        return form.get("client_id"), form.get("client_secret", "")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client("unsupported client authentication method; use HTTP Basic")
    if "client_id" in form or "client_secret" in form:
        raise _invalid_request("use one client authentication method: HTTP Basic or the body, not both")
    try:
        user, colon, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        if not colon:
            raise ValueError("no colon")
        # RFC 6749 §2.3.1: both halves are form-urlencoded before they are joined.
        client_id, secret = unquote_plus(user, errors="strict"), unquote_plus(password, errors="strict")
    except ValueError:  # binascii.Error and UnicodeDecodeError included
        raise _invalid_request("malformed HTTP Basic credentials") from None
    return client_id or None, secret
