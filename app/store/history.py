"""Transaction history queries, each one Core statement on a pooled connection that only reads.

Entries are joined to their card for its currency; a code filter is a subquery on the codes'
lookup hash, so even it costs no extra round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, func, select
from sqlalchemy.sql import Select

from app.db import READ_ONLY
from app.entities import Transaction
from app.models import GiftCard, GiftCardCode, LedgerEntry
from app.store import ledger
from app.store.scope import Stores, in_stores

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_codes = GiftCardCode.__table__  # type: ignore[attr-defined]
_ledger = LedgerEntry.__table__  # type: ignore[attr-defined]


# The columns a Transaction is built from: the ledger row's and its card's currency.
_ENTRY_COLUMNS = (*_ledger.c, _cards.c.currency)


@dataclass(frozen=True, slots=True)
class EntryCriteria:
    """Which entries to list; None means no condition (but for ``stores``, where it means every
    store). Times are UTC."""

    stores: Stores  # the caller's (Principal.store_ids())
    after_id: int | None = None
    giftcard_id: int | None = None
    member_id: str | None = None  # the card's member
    code_lookup_hashes: tuple[bytes, ...] | None = None  # the card holding this live code (with code_type)
    code_type: str | None = None
    status: str | None = None
    trans_type: str | None = None
    source_id: str | None = None
    ref_no: str | None = None
    location_id: str | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    now: datetime | None = None  # when a hold counts as lapsed (status AUTHORIZED / EXPIRED)


@dataclass(frozen=True, slots=True)
class EntrySlice:
    entries: list[Transaction]  # in id order
    more: bool  # further entries match after the last one


def _entries(*where: ColumnElement[bool]) -> Select[Any]:
    joined = _ledger.join(_cards, _cards.c.id == _ledger.c.giftcard_id)
    return select(*_ENTRY_COLUMNS).select_from(joined).where(*where)


class HistoryStore:
    """The history's reads, each on a pooled connection that only reads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._codes = ledger.LedgerStore(engine)

    def entries(self, criteria: EntryCriteria, limit: int) -> EntrySlice:
        """Up to ``limit`` matching entries after ``criteria.after_id``, and whether more follow."""
        # One row beyond the page says whether there is a next page.
        rows = self._read(_entries(*_conditions(criteria)).order_by(_ledger.c.id).limit(limit + 1))
        return EntrySlice(rows[:limit], more=len(rows) > limit)

    def latest(self, card_id: int, limit: int) -> list[Transaction]:
        """The card's ``limit`` newest entries, newest first."""
        return self._read(
            _entries(_ledger.c.giftcard_id == card_id).order_by(_ledger.c.id.desc()).limit(limit)
        )

    def open_authorizations(self, card_id: int, now: datetime) -> list[Transaction]:
        """The card's AUTHORIZED, unexpired entries, oldest first (debits and credits)."""
        authorized = _status("AUTHORIZED", now)
        return self._read(_entries(_ledger.c.giftcard_id == card_id, *authorized).order_by(_ledger.c.id))

    def available_balance(self, card_id: int, now: datetime) -> int:
        """The card's balance minus its open, unexpired debit holds, both read in one statement."""
        held = ledger.held_amount(card_id, now).scalar_subquery()
        statement = select(_cards.c.balance - held).where(_cards.c.id == card_id)
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return int(connection.execute(statement).scalar_one())

    def totals(self, card_id: int) -> tuple[int, int]:
        """What the card's completed transactions loaded and used: the sums of its credits and of
        its debits (both positive), in one statement."""
        amount, completed = _ledger.c.amount, _ledger.c.status == "COMPLETED"
        loaded = func.coalesce(func.sum(case((and_(completed, amount > 0), amount), else_=0)), 0)
        used = func.coalesce(func.sum(case((and_(completed, amount < 0), -amount), else_=0)), 0)
        statement = select(loaded, used).where(_ledger.c.giftcard_id == card_id)
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            row = connection.execute(statement).one()
        return int(row[0]), int(row[1])

    def has_live_code(self, lookup_hashes: tuple[bytes, ...], code_type: str, stores: Stores) -> bool:
        """Whether a live (not revoked) code of this type in ``stores`` has one of these hashes."""
        return bool(self._codes.live_codes(lookup_hashes, code_type, stores))

    def _read(self, statement: Select[Any]) -> list[Transaction]:
        with self._engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return [ledger.transaction_from_row(row._asdict()) for row in connection.execute(statement)]


def _status(status: str | None, now: datetime | None) -> list[ColumnElement[bool]]:
    """Stored statuses, and the two an AUTHORIZED row shows: AUTHORIZED while its hold runs, EXPIRED after."""
    if status is None:
        return []
    if status in ("AUTHORIZED", "EXPIRED") and now is not None:
        running = _ledger.c.hold_expires_at > now
        return [_ledger.c.status == "AUTHORIZED", running if status == "AUTHORIZED" else ~running]
    return [_ledger.c.status == status]


def _conditions(criteria: EntryCriteria) -> list[ColumnElement[bool]]:
    conditions = in_stores(_ledger.c.store_id, criteria.stores)
    if criteria.after_id is not None:
        conditions.append(_ledger.c.id > criteria.after_id)
    if criteria.member_id is not None:
        conditions.append(_cards.c.member_id == criteria.member_id)
    if criteria.code_lookup_hashes is not None:
        holder = select(_codes.c.giftcard_id).where(
            *ledger.code_matches(criteria.code_lookup_hashes, criteria.code_type, criteria.stores)
        )
        conditions.append(_ledger.c.giftcard_id.in_(holder))
    conditions += _status(criteria.status, criteria.now)
    # The criteria's and the columns' names.
    for name in ("giftcard_id", "trans_type", "source_id", "ref_no", "location_id"):
        if (value := getattr(criteria, name)) is not None:
            conditions.append(_ledger.c[name] == value)
    if criteria.created_from is not None:
        conditions.append(_ledger.c.created_at >= criteria.created_from)
    if criteria.created_before is not None:
        conditions.append(_ledger.c.created_at < criteria.created_before)
    return conditions
