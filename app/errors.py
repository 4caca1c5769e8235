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
    └── UnavailableError           UNAVAILABLE        the server cannot take the request now
        └── BusyError              UNAVAILABLE        slow checks (argon2) at capacity; ``retryAfter``
    ConfigurationError             (start-up only, never reaches a client)

Anything else that escapes a resolver is logged and answered as ``INTERNAL`` with a generic
message. Messages of these errors are written for clients: they never hold a code, a PIN, SQL or
a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The values of ``extensions.code``; the API publishes them as the ``ErrorCode`` enum."""

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


# What each code means, for clients: the schema describes the enum's values with these.
ERROR_CODE_DESCRIPTIONS: Mapping[ErrorCode, str] = {
    ErrorCode.UNAUTHENTICATED: "A guarded field was asked for without a bearer token.",
    ErrorCode.FORBIDDEN: "The token lacks a permission the field needs (the message names it).",
    ErrorCode.BAD_USER_INPUT: "Malformed or contradictory input, or a variable missing or of the "
    "wrong type; extensions.field names the field.",
    ErrorCode.NOT_FOUND: "An addressed object (a card, a transaction) does not exist; "
    "extensions.field names the argument.",
    ErrorCode.CONFLICT: "The request clashes with what exists: a code already used within its "
    "type, a code reserved by another client, a change to a deactivated card, a transaction that "
    "is not AUTHORIZED, an idempotency key reused with other input.",
    ErrorCode.INSUFFICIENT_FUNDS: "A debit beyond the card's available balance; nothing was debited.",
    ErrorCode.LIMIT_EXCEEDED: "Well-formed input that would pass a configured ceiling; "
    "extensions.limit names it (maxBalance; a program's denominations, minValue, maxValue, "
    "valueChangesAllowed, maxDailyLoad) and extensions.field the field.",
    ErrorCode.CARD_NOT_USABLE: "The card or code cannot take a transaction: blocked, deactivated, "
    "outside its validity window, an expired or revoked code, or (for callers without "
    "ListGiftCards) an unknown code or a wrong PIN.",
    ErrorCode.RATE_LIMITED: "Too many code attempts; extensions.retryAfter says in how many seconds "
    "to try again.",
    ErrorCode.UNAVAILABLE: "The server cannot take the request now (slow checks at capacity, writes "
    "or database connections waited for too long); try again, after extensions.retryAfter seconds "
    "when it is given.",
    ErrorCode.INTERNAL: "Anything unexpected; the message is generic and the server log has the "
    "details under the response's X-Request-ID.",
    ErrorCode.GRAPHQL_PARSE_FAILED: "The document is not valid GraphQL, or has too many tokens.",
    ErrorCode.GRAPHQL_VALIDATION_FAILED: "The document does not fit the schema or passes a document "
    "limit (depth, aliases, fields), or is too costly to validate.",
}


class GiftCardError(Exception):
    """Base of every error meant for the client."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # graphql-core copies an original error's `extensions` into the response.
        self.extensions: dict[str, Any] = {"code": self.code.value}
        if field is not None:
            self.extensions["field"] = field


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
    """Well-formed input that would pass a configured ceiling, which ``extensions.limit`` names as the
    README does (``maxBalance``): a client tells it from malformed input and insufficient funds."""

    code = ErrorCode.LIMIT_EXCEEDED

    def __init__(self, message: str, *, field: str, limit: str) -> None:
        super().__init__(message, field=field)
        self.limit = limit
        self.extensions["limit"] = limit


class CardNotUsableError(GiftCardError):
    code = ErrorCode.CARD_NOT_USABLE


class _RetryAfter(GiftCardError):
    """Says when to try again: ``extensions.retryAfter``, in seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.extensions["retryAfter"] = retry_after


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
