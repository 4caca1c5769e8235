"""The card listing: a page of cards in id order (keyset, either way), then the live codes of those
cards, in two Core statements whatever the page size, on a pooled connection that only reads.

The page's statement also reads, behind a cursor, the nearest matching card at or before it (a
UNION ALL of the page and that one row), so a page knows whether cards come before it at no extra
round trip. A code filter first finds the cards holding the code (one statement more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Executable, Row, bindparam, exists, select, union_all

from app.db import READ_ONLY
from app.entities import Card, StoredCode
from app.models import GiftCard, GiftCardCode
from app.store.cards import CARD_COLUMNS, CODE_COLUMN_NAMES, card_from_row, code_from_row
from app.store.ledger import code_matches
from app.store.scope import Stores, in_stores

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_codes = GiftCardCode.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class CardCriteria:
    """Which cards to list; None means no condition (but for ``stores``, where it means every
    store). Times are UTC."""

    stores: Stores  # the caller's (Principal.store_ids())
    after_id: int | None = None  # only cards past this one, in the order read
    descending: bool = False  # read newest first (ids downwards)
    card_ids: tuple[int, ...] | None = None  # only these cards
    state: str | None = None
    excluded_states: tuple[str, ...] = ()
    member_id: str | None = None
    live_code_types: tuple[str, ...] = ()  # has a non-revoked code of each of these types
    no_live_code_types: tuple[str, ...] = ()  # has no non-revoked code of any of these types
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class CardSlice:
    cards: list[Card[StoredCode]]  # with their live codes, in the order read
    more: bool  # further cards match after the last one
    behind: bool = False  # a card matching but for after_id is that one or lies before it


class CardLister:
    """Lists cards page by page on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._codes = (
            select(_codes.c.giftcard_id, *(_codes.c[name] for name in CODE_COLUMN_NAMES))
            .where(_codes.c.giftcard_id.in_(bindparam("ids", expanding=True)))
            .where(_codes.c.revoked_at.is_(None))
            .order_by(_codes.c.giftcard_id, _codes.c.id)
        )

    def list_cards(self, criteria: CardCriteria, limit: int) -> CardSlice:
        """Up to ``limit`` matching cards after ``criteria.after_id`` (in the order read), whether
        more follow, and whether any lie behind."""
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            page, behind = _split(connection.execute(_page(criteria, limit)).all(), criteria)
            codes: dict[int, list[StoredCode]] = {row[0]: [] for row in page[:limit]}
            if codes:
                for code in connection.execute(self._codes, {"ids": list(codes)}):
                    codes[code[0]].append(code_from_row(code, 1))
        cards = [card_from_row(row, codes[row[0]]) for row in page[:limit]]
        return CardSlice(cards, more=len(page) > limit, behind=behind)

    def code_holders(
        self, lookup_hashes: tuple[bytes, ...], code_types: tuple[str, ...], stores: Stores
    ) -> list[tuple[int, str]]:
        """The cards (id, code type) holding a live code of one of ``code_types`` with one of these
        lookup hashes in ``stores``: the code filter's cards."""
        statement = select(_codes.c.giftcard_id, _codes.c.code_type).where(
            *code_matches(lookup_hashes, code_types, stores)
        )
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return [(row[0], row[1]) for row in connection.execute(statement)]


def _page(criteria: CardCriteria, limit: int) -> Executable:
    """The page (one row beyond it says whether more follow) and, behind a cursor, the nearest
    matching card at or before it."""
    ids, cursor, conditions = _cards.c.id, criteria.after_id, _conditions(criteria)
    read, back = (ids.desc(), ids) if criteria.descending else (ids, ids.desc())
    if cursor is None:
        return select(*CARD_COLUMNS).where(*conditions).order_by(read).limit(limit + 1)
    past, behind = (ids < cursor, ids >= cursor) if criteria.descending else (ids > cursor, ids <= cursor)
    page = select(*CARD_COLUMNS).where(*conditions, past).order_by(read).limit(limit + 1)
    nearest = select(*CARD_COLUMNS).where(*conditions, behind).order_by(back).limit(1)
    return union_all(select(page.subquery()), select(nearest.subquery()))


def _split(rows: Sequence[Row[Any]], criteria: CardCriteria) -> tuple[list[Row[Any]], bool]:
    """The page's rows in the order read, and whether a row behind the cursor came with them."""
    cursor, descending = criteria.after_id, criteria.descending
    if cursor is None:
        return list(rows), False
    page = [row for row in rows if (row[0] < cursor if descending else row[0] > cursor)]
    page.sort(key=lambda row: -row[0] if descending else row[0])  # a UNION ALL keeps no order
    return page, len(page) < len(rows)


def _has_live_code(code_type: str) -> ColumnElement[bool]:
    live = (_codes.c.code_type == code_type, _codes.c.revoked_at.is_(None))
    return exists().where(_codes.c.giftcard_id == _cards.c.id, *live)


def _conditions(criteria: CardCriteria) -> list[ColumnElement[bool]]:
    conditions = in_stores(_cards.c.store_id, criteria.stores)
    if criteria.card_ids is not None:
        conditions.append(_cards.c.id.in_(criteria.card_ids))
    if criteria.state is not None:
        conditions.append(_cards.c.state == criteria.state)
    if criteria.excluded_states:
        conditions.append(_cards.c.state.not_in(criteria.excluded_states))
    if criteria.member_id is not None:
        conditions.append(_cards.c.member_id == criteria.member_id)
    conditions += [_has_live_code(code_type) for code_type in criteria.live_code_types]
    conditions += [~_has_live_code(code_type) for code_type in criteria.no_live_code_types]
    if criteria.created_from is not None:
        conditions.append(_cards.c.created_at >= criteria.created_from)
    if criteria.created_before is not None:
        conditions.append(_cards.c.created_at < criteria.created_before)
    return conditions
