"""The money path's statements, built once at import: the card locked and read, then what its open
debit holds hold (with the code's PIN state when a code addresses it); the balance change with its
ledger and audit rows is :mod:`app.store.moves`. They are prepared (app.store.prepared) and run on
the DBAPI connection of the unit of work's transaction, with nothing of the ORM in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.sql import Select
from sqlmodel import Session

from app.models import GiftCard, GiftCardCode, LedgerEntry
from app.store.ledger import LockedCode, open_debit_holds
from app.store.prepared import binds, in_transaction, prepared, run_together
from app.store.scope import Stores

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]
_codes = GiftCardCode.__table__  # type: ignore[attr-defined]
# LockedCode's columns; its first field, revoked, is whether the code has a revoked_at.
_CODE_COLUMNS = ("revoked_at", *(item.name for item in fields(LockedCode)[1:]))


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


# What the card's open debit holds hold (app.store.ledger.open_debit_holds). Read in a statement
# after the one that took the card's lock: on PostgreSQL a statement that waited for a row lock
# sees the locked row as last committed, but every other row (the holds that the lock holder
# placed or settled) as when the statement started. Sent together with the lock on psycopg (one
# pipeline, app.store.prepared.run_together), it still runs after it: the server takes a
# statement's snapshot when it reaches it, once the one before has its lock.
_HELD = (
    select(func.coalesce(func.sum(-_ledger.c.amount), 0))
    .where(_ledger.c.giftcard_id == bindparam("card_id"), *open_debit_holds(bindparam("now")))
    .scalar_subquery()
    .label("held")
)
_CARD_FIELDS = tuple(item.name for item in fields(LockedCard)[:-1])  # all but held
_LOCK_ANY = (
    select(*(_cards.c[name] for name in _CARD_FIELDS))
    .where(_cards.c.id == bindparam("card_id"))
    .with_for_update()
)
_HELD_ONLY = select(_HELD)
# A code's PIN state, locked (after its card, as every writer locks), with the card's holds.
_CODE_AND_HELD = (
    select(*(_codes.c[name] for name in _CODE_COLUMNS), _HELD)
    .where(_codes.c.id == bindparam("code_id"))
    .with_for_update(of=_codes)
)
# The card a guard locked, kept on its session for the work that follows (one lock, one read).
_KEPT = "giftcards.locked_card"


def _lock_in(stores: int) -> Select[Any]:
    """The card among the caller's stores (bound as s0…): another store's is never locked, nor waited for."""
    return _LOCK_ANY.where(_cards.c.store_id.in_(binds("s", stores)))


def lock_card(session: Session, card_id: int, stores: Stores, now: datetime) -> LockedCard | None:
    """The card if it is in one of ``stores`` (None: any), locked until the transaction ends
    (PostgreSQL; SQLite holds the write lock), with its open debit holds at ``now``."""
    if stores is not None and not stores:
        return None  # a token of no store acts on no card
    connection, dialect = in_transaction(session)
    params: dict[str, Any] = {"card_id": card_id, "now": now}
    if stores is None:
        lock = prepared(dialect, "lock card", lambda: _LOCK_ANY)
    else:
        lock = prepared(dialect, ("lock card in", len(stores)), lambda: _lock_in(len(stores)))
        params.update((f"s{index}", store) for index, store in enumerate(stores))
    held_only = prepared(dialect, "held", lambda: _HELD_ONLY)
    rows, ((held,),) = run_together(connection, (lock, params), (held_only, params))
    return _locked(lock.convert(rows[0], 0, len(_CARD_FIELDS)), held) if rows else None


def lock_card_and_code(
    session: Session, card_id: int, code_id: int, now: datetime
) -> tuple[LockedCard | None, LockedCode]:
    """The code's card (as :func:`lock_card`, in any store) and the code's PIN state (as
    :func:`app.store.ledger.code_for_update`), locked in that order, in two statements."""
    connection, dialect = in_transaction(session)
    params = {"card_id": card_id, "code_id": code_id, "now": now}
    lock = prepared(dialect, "lock card", lambda: _LOCK_ANY)
    code = prepared(dialect, "lock code", lambda: _CODE_AND_HELD)
    cards, (row,) = run_together(connection, (lock, params), (code, params))  # the code exists
    revoked_at, *state, held = code.convert(row, 0, len(row))
    locked = _locked(lock.convert(cards[0], 0, len(_CARD_FIELDS)), held) if cards else None
    return locked, LockedCode(revoked_at is not None, *state)


def _locked(row: Sequence[Any], held: int) -> LockedCard:
    return LockedCard(**dict(zip(_CARD_FIELDS, row, strict=True)), held=int(held))


def keep(session: Session, card: LockedCard | None) -> None:
    """Keep the card a guard locked for the work of the same transaction."""
    if card is not None:
        session.info[_KEPT] = card


def forget_kept(session: Session) -> None:
    """No card kept by an earlier mutation of the transaction (a batch runs several in one)."""
    session.info.pop(_KEPT, None)


def kept(session: Session, card_id: int, stores: Stores) -> LockedCard | None:
    """The card a guard kept (once: a later read locks again), if it is this one and in ``stores``."""
    card: LockedCard | None = session.info.pop(_KEPT, None)
    if card is None or card.id != card_id:
        return None
    return card if stores is None or card.store_id in stores else None
