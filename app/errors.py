"""The errors the server raises on purpose, and the codes clients see for them.

    GiftCardError                  extensions.code
    ├── UnauthenticatedError       UNAUTHENTICATED    a guarded field without a token
    ├── ForbiddenError             FORBIDDEN          the token lacks a permission
    ├── BadUserInputError          BAD_USER_INPUT     malformed or contradictory input; names the field
    ├── NotFoundError              NOT_FOUND          an addressed object does not exist
    ├── ConflictError              CONFLICT           duplicate code, reused idempotency key
    ├── InsufficientFundsError     INSUFFICIENT_FUNDS
    ├── LimitExceededError         LIMIT_EXCEEDED     a configured ceiling (``limit``) would be passed
    ├── CardNotUsableError         CARD_NOT_USABLE
    ├── RateLimitedError           RATE_LIMITED       too many attempts; ``retryAfter`` in seconds
    └── UnavailableError           UNAVAILABLE        a dependency (the rate limit store) is down
        └── BusyError              UNAVAILABLE        slow checks (argon2) at capacity; ``retryAfter``
    ConfigurationError             (start-up only, never reaches a client)

Anything else that escapes a resolver is logged and answered as ``INTERNAL`` with a generic
message. Messages of these errors are written for clients: they never hold a code, a PIN, SQL or
a key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    CARD_NOT_USABLE = "CARD_NOT_USABLE"
    RATE_LIMITED = "RATE_LIMITED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


class GiftCardError(Exception):
    """Base of every error meant for the client."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def extensions(self) -> dict[str, Any]:
        # graphql-core copies an original error's `extensions` into the response.
        extensions: dict[str, Any] = {"code": self.code.value}
        if self.field is not None:
            extensions["field"] = self.field
        return extensions


class UnauthenticatedError(GiftCardError):
    code = ErrorCode.UNAUTHENTICATED


class ForbiddenError(GiftCardError):
    code = ErrorCode.FORBIDDEN


class BadUserInputError(GiftCardError):
    code = ErrorCode.BAD_USER_INPUT


class NotFoundError(GiftCardError):
    code = ErrorCode.NOT_FOUND


class ConflictError(GiftCardError):
    code = ErrorCode.CONFLICT


class InsufficientFundsError(GiftCardError):
    code = ErrorCode.INSUFFICIENT_FUNDS


class LimitExceededError(GiftCardError):
    """Well-formed input that would take something past a configured ceiling.

    ``extensions.limit`` names the ceiling as the README does (``maxBalance``), so a client can
    tell it from malformed input and from insufficient funds.
    """

    code = ErrorCode.LIMIT_EXCEEDED

    def __init__(self, message: str, *, field: str, limit: str) -> None:
        super().__init__(message, field=field)
        self.limit = limit

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "limit": self.limit}


class CardNotUsableError(GiftCardError):
    code = ErrorCode.CARD_NOT_USABLE


class _RetryAfter(GiftCardError):
    """Says when to try again: ``extensions.retryAfter``, in seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "retryAfter": self.retry_after}


class RateLimitedError(_RetryAfter):
    code = ErrorCode.RATE_LIMITED


class UnavailableError(GiftCardError):
    code = ErrorCode.UNAVAILABLE


class BusyError(_RetryAfter, UnavailableError):
    """This process runs as many slow verifications as it may at once; retry in ``retry_after`` s."""


class ConfigurationError(Exception):
    """Bad settings or policy file; stops start-up with a message for the operator."""


class InvalidTokenError(Exception):
    """A bearer token that is present but not acceptable; answered with HTTP 401."""
