"""The money path's statements, built once at import: the card locked and read with what its open
debit holds hold (one statement), and on PostgreSQL the balance change with its ledger and audit
rows (one statement, :mod:`app.store.moves`). They run on the unit of work's connection, with
nothing of the ORM (no identity map, no flush) in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlmodel import Session

from app.models import GiftCard, LedgerEntry
from app.store.scope import Stores

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class LockedCard:
    """What the money rules read of a card, under its row lock, and what its open debit holds hold
    at the time it was read (minor units, positive)."""

    id: int
    store_id: str
    currency: str
    state: str
    balance: int
    program_id: int | None
    usable_from: datetime | None
    expires_at: datetime | None
    held: int


_HELD = (
    select(func.coalesce(func.sum(-_ledger.c.amount), 0))
    .where(
        _ledger.c.giftcard_id == _cards.c.id,
        _ledger.c.status == "AUTHORIZED",  # open debit holds (app.store.ledger.open_debit_holds)
        _ledger.c.amount < 0,
        _ledger.c.hold_expires_at > bindparam("now"),
    )
    .scalar_subquery()
    .label("held")
)
_LOCK_ANY = (
    select(*(_cards.c[item.name] for item in fields(LockedCard)[:-1]), _HELD)
    .where(_cards.c.id == bindparam("card_id"))
    .with_for_update(of=_cards)
)
# The same, among the caller's stores: another store's card is never locked, nor waited for.
_LOCK_IN = _LOCK_ANY.where(_cards.c.store_id.in_(bindparam("stores", expanding=True)))
# The card a guard locked, kept on its session for the work that follows (one lock, one read).
_KEPT = "giftcards.locked_card"


def connection(session: Session) -> Connection:
    """The connection of the session's transaction, to run Core statements on directly."""
    return session.connection()


def lock_card(session: Session, card_id: int, stores: Stores, now: datetime) -> LockedCard | None:
    """The card if it is in one of ``stores`` (None: any), locked until the transaction ends
    (PostgreSQL; SQLite holds the write lock), with its open debit holds at ``now``."""
    if stores is not None and not stores:
        return None  # a token of no store acts on no card
    statement = _LOCK_ANY if stores is None else _LOCK_IN
    params: Mapping[str, Any] = {"card_id": card_id, "now": now}
    if stores is not None:
        params = {**params, "stores": list(stores)}
    row = connection(session).execute(statement, params).first()
    return None if row is None else LockedCard(**{**row._mapping, "held": int(row.held)})


def keep(session: Session, card: LockedCard | None) -> None:
    """Keep the card a guard locked for the work of the same transaction."""
    if card is not None:
        session.info[_KEPT] = card


def kept(session: Session, card_id: int, stores: Stores) -> LockedCard | None:
    """The card a guard kept (once: a later read locks again), if it is this one and in ``stores``."""
    card: LockedCard | None = session.info.pop(_KEPT, None)
    if card is None or card.id != card_id:
        return None
    return card if stores is None or card.store_id in stores else None
