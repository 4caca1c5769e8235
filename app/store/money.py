"""The money path's statements, built once at import: the card locked and read with what its open
debit holds hold (one statement), and on PostgreSQL the balance change with its ledger and audit
rows (one statement, :mod:`app.store.moves`). They run on the unit of work's connection, with
nothing of the ORM (no identity map, no flush) in between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlmodel import Session

from app.models import GiftCard, GiftCardCode, LedgerEntry
from app.store.ledger import LockedCode, code_for_update
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
_CARD_FIELDS = tuple(item.name for item in fields(LockedCard))
_LOCK_ANY = (
    select(*(_cards.c[name] for name in _CARD_FIELDS[:-1]), _HELD)
    .where(_cards.c.id == bindparam("card_id"))
    .with_for_update(of=_cards)
)
# The same, among the caller's stores: another store's card is never locked, nor waited for.
_LOCK_IN = _LOCK_ANY.where(_cards.c.store_id.in_(bindparam("stores", expanding=True)))
# The card and one of its codes, both locked (card first: the order of FOR UPDATE OF, in which
# PostgreSQL locks a row's tables, is the order every writer takes them in), in one statement.
_LOCK_WITH_CODE = (
    select(*_LOCK_ANY.selected_columns, *(_codes.c[name] for name in _CODE_COLUMNS))
    .where(_cards.c.id == bindparam("card_id"), _codes.c.id == bindparam("code_id"))
    .where(_codes.c.giftcard_id == _cards.c.id)
    .with_for_update(of=[_cards, _codes])
)
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
    return None if row is None else _card(row)


def _card(row: Sequence[Any]) -> LockedCard:
    values = dict(zip(_CARD_FIELDS, row, strict=False))  # the card's columns come first
    return LockedCard(**{**values, "held": int(values["held"])})


def lock_card_and_code(
    session: Session, card_id: int, code_id: int, now: datetime
) -> tuple[LockedCard | None, LockedCode]:
    """The code's card (as :func:`lock_card`, in any store) and the code's PIN state (as
    :func:`app.store.ledger.code_for_update`), both locked, in one statement."""
    params = {"card_id": card_id, "code_id": code_id, "now": now}
    row = connection(session).execute(_LOCK_WITH_CODE, params).first()
    if row is None:  # not the code's card: locked one by one, as asked
        return lock_card(session, card_id, None, now), code_for_update(session, code_id)
    revoked_at, *state = row[len(_CARD_FIELDS) :]
    return _card(row), LockedCode(revoked_at is not None, *state)


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
