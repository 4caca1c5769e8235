"""Idempotent mutations: a retry with the same key and input gets the first answer again.

A key is scoped to the token's subject and claimed in the transaction of the request's own writes,
so both are kept or neither is; a concurrent retry waits for it (see
:func:`app.store.idempotency.claim_key`) and replays the answer. The same key with another input is
a CONFLICT; a failed request stores nothing. Answers are stored encrypted: the answer to
``giftcardAdd`` can hold a generated code.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

from sqlmodel import Session

from app.domain.codes import CodeVault
from app.entities import decode
from app.errors import BadUserInputError, ConflictError
from app.models import IdempotencyKey
from app.policy import Principal
from app.store import idempotency as store

MAX_KEY_LENGTH = 128


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_plain(item) if isinstance(item, Enum) else item for item in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(value: Any) -> bytes:
    """Canonical JSON of a dataclass (or plain data): the same input gives the same bytes. Fields a
    dataclass names in ``OMITTED_WHEN_NONE`` (added after keys were stored) are left out when None,
    so that a retry of a request stored before they existed still matches."""
    data = value
    if is_dataclass(value) and not isinstance(value, type):
        data = asdict(value)
        for name in getattr(value, "OMITTED_WHEN_NONE", ()):
            if data[name] is None:
                del data[name]
    return json.dumps(data, default=_plain, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A request sent with an idempotency key: whose key, and the digests of what was asked."""

    store_key: str  # the caller's stores (Principal.store_key): keys never cross stores
    subject: str
    key: str
    operation: str
    digests: tuple[bytes, ...]  # under each lookup key; the first is stored

    @property
    def ident(self) -> store.KeyIdent:
        return self.store_key, self.subject, self.key

    @property
    def context(self) -> bytes:
        """What the stored answer is sealed to: it opens for this subject and key only."""
        return f"idempotency:{self.subject}:{self.key}".encode()


class Idempotency:
    """The idempotency step of a mutation: claim the key, seal the answer, replay it to a retry."""

    def __init__(self, vault: CodeVault, retention: timedelta, keys: store.KeyStore) -> None:
        self._vault = vault
        self._retention = retention
        self._keys = keys

    def keyed(
        self, principal: Principal, key: str | None, operation: str, request: Any
    ) -> KeyedRequest | None:
        """The checked key and the digests of the request, or None without a key."""
        if key is None:
            return None
        principal.store_ids()  # a token naming an unknown store is refused before any key is claimed
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise BadUserInputError(
                f"idempotency_key: 1 to {MAX_KEY_LENGTH} printable characters", field="idempotency_key"
            )
        # Keyed (the input can hold a code or PIN) and bound to the caller's permissions, so a
        # replay never shows more than the same request would show now.
        document = {
            "operation": operation,
            "permissions": sorted(principal.permissions),
            "request": json.loads(encode(request)),
        }
        digests = self._vault.keyed_digests(b"idempotency", encode(document))
        return KeyedRequest(principal.store_key, principal.subject or "", key, operation, digests)

    def claim(self, session: Session, keyed: KeyedRequest, shape: Any) -> Any | None:
        """Claim the key in ``session``'s transaction; the stored answer (a ``shape``) when the key
        was taken, else None. Claimed before anything is locked: a keyed mutation takes its key
        first and row locks after, so two of them with one key cannot deadlock."""
        claim = IdempotencyKey(
            store_key=keyed.store_key,
            subject=keyed.subject,
            key=keyed.key,
            operation=keyed.operation,
            request_hash=keyed.digests[0],
            request_key_id=self._vault.lookup_key_id,
            response=b"",
            key_id="",
            created_at=datetime.now(UTC),
        )
        if store.claim_key(session, claim):  # one statement when the key is new, as it mostly is
            return None
        # Taken: by another request that committed first (a waiting claim waits for it), or before.
        stored = store.find_key(session, keyed.ident)
        if stored is None:  # pragma: no cover - it committed, so it is there
            raise ConflictError(
                "idempotency_key: a request with this key is still running", field="idempotency_key"
            )
        return self._open(stored, keyed, shape)

    def release(self, session: Session, keyed: KeyedRequest) -> None:
        """A refused request keeps nothing under its key."""
        store.release_key(session, keyed.ident)

    def seal(self, session: Session, keyed: KeyedRequest, answer: Any) -> None:
        """Store the answer under the claimed key, and forget keys past the retention time."""
        key_id, sealed = self._vault.seal_blob(encode(answer), keyed.context)
        store.seal_key(session, keyed.ident, key_id, sealed, datetime.now(UTC) - self._retention)

    def committed(self, keyed: KeyedRequest, shape: Any) -> Any | None:
        """The answer stored under a key already used, read outside any write transaction."""
        stored = self._keys.find_committed(keyed.ident)
        return None if stored is None else self._open(stored, keyed, shape)

    def _open(self, stored: IdempotencyKey, keyed: KeyedRequest, shape: Any) -> Any:
        matches = any(hmac.compare_digest(stored.request_hash, digest) for digest in keyed.digests)
        if stored.operation != keyed.operation or not matches:
            raise ConflictError(
                "idempotency_key: already used for a different request", field="idempotency_key"
            )
        return decode(shape, json.loads(self._vault.open_blob(stored.key_id, stored.response, keyed.context)))
