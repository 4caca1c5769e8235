"""What to tell an operator when the database cannot be reached: where it was looked for and why the
driver said it failed, in a line, from the driver's message (never its URL, which may hold a
password)."""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError


def unreachable(url: URL, exc: OperationalError) -> str:
    """Where the database was looked for, why it could not be reached and what to check, in a line
    (never the URL, which may hold a password)."""
    if url.get_backend_name() == "sqlite":
        where, hint = f"the SQLite database {url.database}", "that its folder exists and is writable"
    else:
        where = f"the database at {url.host or 'localhost'}:{url.port or 5432}"
        hint = "that the server is running"
    return f"cannot reach {where} ({_reason(exc)}): check GIFTCARDS_DATABASE_URL and {hint}"


# What a driver's connection error says (lower case) → the reason given; any other is "connection failed".
_REASONS = (
    ("connection refused", "connection refused"),
    ("timeout expired", "timed out"),
    ("timed out", "timed out"),
    ("could not translate host name", "unknown host"),
    ("name or service not known", "unknown host"),
    ("authentication failed", "authentication failed"),
    ("no password supplied", "authentication failed"),
    ("does not exist", "no such database or user"),
    ("unable to open database file", "cannot open the file"),
)


def _reason(exc: OperationalError) -> str:
    text = str(exc.orig).lower()
    return next((reason for pattern, reason in _REASONS if pattern in text), "connection failed")
