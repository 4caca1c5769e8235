"""Idempotent mutations: a retry with the same key and input gets the first response again.

A key (1 to 128 characters) is scoped to the token's subject. The first request claims the key in
the same database transaction as its own writes, so either both are kept or neither is; a
concurrent retry waits for that transaction (PostgreSQL's unique index, SQLite's write lock) and
then replays the stored response. The same key with another input is a CONFLICT. A failed
request stores nothing, so its retry runs again. Stored responses are encrypted: the response to
``giftcardAdd`` can hold a generated code.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.db import UnitOfWork
from app.domain.audit import AuditTrail
from app.domain.codes import CodeVault
from app.errors import BadUserInputError, ConflictError, GiftCardError
from app.models import IdempotencyKey
from app.policy import Principal
from app.store import idempotency as store

T = TypeVar("T")

MAX_KEY_LENGTH = 128
# Checks a mutation's precondition in its transaction; returns the refusal to raise after commit.
Guard = Callable[[Session], GiftCardError | None]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_plain(item) if isinstance(item, Enum) else item for item in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(value: Any) -> bytes:
    """Canonical JSON of a dataclass (or plain data): the same input gives the same bytes."""
    data = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
    return json.dumps(data, default=_plain, sort_keys=True, separators=(",", ":")).encode()


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadUserInputError(
            f"idempotencyKey: 1 to {MAX_KEY_LENGTH} printable characters", field="idempotencyKey"
        )


class Idempotency:
    """Runs a unit of work at most once per (subject, key)."""

    def __init__(self, uow: UnitOfWork, vault: CodeVault, retention: timedelta, audit: AuditTrail) -> None:
        self._uow = uow
        self._vault = vault
        self._retention = retention
        self._audit = audit

    def run(
        self,
        principal: Principal,
        key: str | None,
        operation: str,
        request: Any,
        work: Callable[[Session], T],
        decode: Callable[[dict[str, Any]], T],
        guard: Guard | None = None,
    ) -> T:
        """``work(session)`` inside one transaction, with its audit events; with a key, at most once
        per input (a replay is audited in a transaction of its own).

        ``guard(session)`` runs first in the same transaction (after a replay is ruled out): when it
        returns an error, what the guard wrote is committed (a wrong PIN stays counted) and the
        error is raised; nothing else is written.
        """
        refusal: GiftCardError | None = None
        if key is None:
            with self._uow.begin() as session:
                refusal = guard(session) if guard else None
                if refusal is None:
                    result = work(session)
                    self._audit.mutated(session, principal, operation, result)
                    return result
            raise refusal
        _check_key(key)
        subject = principal.subject or ""
        request_hashes = self._digests(principal, operation, request)
        request_hash = request_hashes[0]  # stored; the others match keys stored before a rotation
        context = f"idempotency:{subject}:{key}".encode()
        replayed: T | None = None
        try:
            with self._uow.begin() as session:
                stored = store.find_key(session, subject, key)
                if stored is not None:
                    replayed = self._replay(stored, operation, request_hashes, context, decode)
                else:
                    now = datetime.now(UTC)
                    claim = IdempotencyKey(
                        subject=subject,
                        key=key,
                        operation=operation,
                        request_hash=request_hash,
                        request_key_id=self._vault.lookup_key_id,
                        response=b"",
                        key_id="",
                        created_at=now,
                    )
                    # Claimed before the guard locks anything: every keyed mutation takes the key
                    # first and row locks after, so two of them with one key cannot deadlock.
                    store.claim_key(session, claim)
                    refusal = guard(session) if guard else None
                    if refusal is not None:
                        store.release_key(session, claim)  # a refusal keeps nothing under the key
                    else:
                        result = work(session)
                        self._audit.mutated(session, principal, operation, result)
                        claim.key_id, claim.response = self._vault.seal_blob(encode(result), context)
                        store.purge_keys(session, now - self._retention)
                        return result
        except IntegrityError as exc:
            if "idempotency_keys" not in str(exc.orig):
                raise
        if refusal is not None:
            raise refusal
        if replayed is None:
            # Another request with this key committed first: answer as it did.
            with self._uow.begin() as session:
                stored = store.find_key(session, subject, key)
                if stored is None:  # pragma: no cover - it committed, so it is there
                    raise ConflictError(
                        "idempotencyKey: a request with this key is still running", field="idempotencyKey"
                    )
                replayed = self._replay(stored, operation, request_hashes, context, decode)
        # After the read transaction: on SQLite a second writer would wait for it.
        self._audit.replayed(principal, operation, replayed)
        return replayed

    def replay(
        self,
        principal: Principal,
        key: str | None,
        operation: str,
        request: Any,
        decode: Callable[[dict[str, Any]], T],
    ) -> T | None:
        """The stored answer to a key already used (audited as a replay), or None for a new key.

        For operations whose checks depend on state that may change after the first answer (a
        code revoked, a PIN locked): asked first, a retry answers as the first request did.
        The same key with another input is a CONFLICT, as in :meth:`run`.
        """
        if key is None:
            return None
        _check_key(key)
        subject = principal.subject or ""
        stored = store.find_committed_key(self._uow.engine, subject, key)
        if stored is None:
            return None
        replayed = self._replay(
            stored,
            operation,
            self._digests(principal, operation, request),
            f"idempotency:{subject}:{key}".encode(),
            decode,
        )
        self._audit.replayed(principal, operation, replayed)
        return replayed

    def _digests(self, principal: Principal, operation: str, request: Any) -> tuple[bytes, ...]:
        # Keyed (the input can hold a code or PIN) and bound to the caller's permissions, so a
        # replay never shows more than the same request would show now.
        return self._vault.keyed_digests(
            b"idempotency",
            encode(
                {
                    "operation": operation,
                    "permissions": sorted(principal.permissions),
                    "request": json.loads(encode(request)),
                }
            ),
        )

    def _replay(
        self,
        stored: IdempotencyKey,
        operation: str,
        request_hashes: tuple[bytes, ...],
        context: bytes,
        decode: Callable[[dict[str, Any]], T],
    ) -> T:
        matches = any(hmac.compare_digest(stored.request_hash, digest) for digest in request_hashes)
        if stored.operation != operation or not matches:
            raise ConflictError(
                "idempotencyKey: already used for a different request", field="idempotencyKey"
            )
        return decode(json.loads(self._vault.open_blob(stored.key_id, stored.response, context)))
