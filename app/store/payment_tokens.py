"""Payment tokens (DESIGN §12): the rows behind ``giftcardTokenize`` and spending by token.

A token is found by its keyed hash under every lookup key (``token_hash IN (…)``), as codes are, and
only while it is unused, unexpired, in the caller's stores and its code is live (not revoked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, insert, select, update
from sqlalchemy.sql import Select
from sqlmodel import Session

from app.db import READ_ONLY
from app.enums import CodeType
from app.models import GiftCardCode
from app.store.scope import Stores, in_stores
from app.token_models import PaymentToken

__all__ = ["PaymentToken", "PaymentTokenStore", "TokenRow", "add_token", "purge_expired", "use_token"]

_tokens = PaymentToken.__table__  # type: ignore[attr-defined]
_codes = GiftCardCode.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An unused, unexpired token whose code is live, and what it stands for."""

    token_id: int
    store_id: str
    giftcard_id: int
    code_id: int
    code_type: CodeType
    code_expires_on: date | None  # the code's own expiry: a code expired since voids the token


def _usable(now: datetime, *conditions: ColumnElement[bool]) -> Select[Any]:
    """Tokens meeting ``conditions`` that are unused, unexpired at ``now`` and of a live code."""
    return (
        select(
            _tokens.c.id,
            _tokens.c.store_id,
            _tokens.c.giftcard_id,
            _tokens.c.code_id,
            _codes.c.code_type,
            _codes.c.expires_on,
        )
        .select_from(_tokens.join(_codes, _codes.c.id == _tokens.c.code_id))
        .where(
            *conditions,
            _tokens.c.used_at.is_(None),
            _tokens.c.expires_at > now,
            _codes.c.revoked_at.is_(None),
        )
        .limit(1)
    )


def _row(found: Any) -> TokenRow | None:
    if found is None:
        return None
    token_id, store_id, card_id, code_id, code_type, expires_on = found
    return TokenRow(token_id, store_id, card_id, code_id, CodeType(code_type), expires_on)


class PaymentTokenStore:
    """Token reads outside a unit of work, over one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def usable(self, token_hashes: Sequence[bytes], stores: Stores, now: datetime) -> TokenRow | None:
        """The token with one of these hashes (one per lookup key), if it can still be used."""
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            found = _usable(
                now, _tokens.c.token_hash.in_(list(token_hashes)), *in_stores(_tokens.c.store_id, stores)
            )
            return _row(connection.execute(found).first())


def usable_for_update(session: Session, token_id: int, now: datetime) -> TokenRow | None:
    """The token by id, locked until the transaction ends, if it can still be used at ``now``."""
    statement = _usable(now, _tokens.c.id == token_id).with_for_update(of=_tokens)
    return _row(session.execute(statement).first())


def add_token(session: Session, values: dict[str, Any]) -> None:
    session.execute(insert(_tokens).values(**values))


def use_token(session: Session, token_id: int, now: datetime, transaction_id: int) -> bool:
    """Mark the token used by ``transaction_id``, unless it already is or has expired: the
    condition makes two concurrent spends of one token commit at most one."""
    statement = (
        update(_tokens)
        .where(_tokens.c.id == token_id, _tokens.c.used_at.is_(None), _tokens.c.expires_at > now)
        .values(used_at=now, transaction_id=transaction_id)
    )
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def purge_expired(session: Session, now: datetime) -> None:
    """Forget tokens that can no longer be used (indexed by ``expires_at``)."""
    session.execute(delete(_tokens).where(_tokens.c.expires_at <= now))
