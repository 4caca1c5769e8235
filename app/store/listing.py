"""The card listing: a page of cards in id order (keyset), then the live codes of those cards, in
two Core statements whatever the page size, on a pooled connection that only reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, bindparam, exists, select

from app.db import READ_ONLY
from app.entities import Card, StoredCode
from app.models import GiftCard, GiftCardCode
from app.store.cards import CARD_COLUMNS, CODE_COLUMN_NAMES, card_from_row, code_from_row
from app.store.scope import Stores, in_stores

_cards = GiftCard.__table__  # type: ignore[attr-defined]
_codes = GiftCardCode.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class CardCriteria:
    """Which cards to list; None means no condition (but for ``stores``, where it means every
    store). Times are UTC."""

    stores: Stores  # the caller's (Principal.store_ids())
    after_id: int | None = None
    state: str | None = None
    excluded_states: tuple[str, ...] = ()
    member_id: str | None = None
    live_code_type: str | None = None  # has a non-revoked code of this type
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class CardSlice:
    cards: list[Card[StoredCode]]  # with their live codes, in id order
    more: bool  # further cards match after the last one


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
        """Up to ``limit`` matching cards after ``criteria.after_id``, and whether more follow."""
        # One row beyond the page says whether there is a next page.
        page = select(*CARD_COLUMNS).where(*_conditions(criteria)).order_by(_cards.c.id).limit(limit + 1)
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            rows = connection.execute(page).all()
            codes: dict[int, list[StoredCode]] = {row[0]: [] for row in rows[:limit]}
            if codes:
                for code in connection.execute(self._codes, {"ids": list(codes)}):
                    codes[code[0]].append(code_from_row(code, 1))
        return CardSlice([card_from_row(row, codes[row[0]]) for row in rows[:limit]], more=len(rows) > limit)


def _conditions(criteria: CardCriteria) -> list[ColumnElement[bool]]:
    conditions = in_stores(_cards.c.store_id, criteria.stores)
    if criteria.after_id is not None:
        conditions.append(_cards.c.id > criteria.after_id)
    if criteria.state is not None:
        conditions.append(_cards.c.state == criteria.state)
    if criteria.excluded_states:
        conditions.append(_cards.c.state.not_in(criteria.excluded_states))
    if criteria.member_id is not None:
        conditions.append(_cards.c.member_id == criteria.member_id)
    if criteria.live_code_type is not None:
        live = (_codes.c.code_type == criteria.live_code_type, _codes.c.revoked_at.is_(None))
        conditions.append(exists().where(_codes.c.giftcard_id == _cards.c.id, *live))
    if criteria.created_from is not None:
        conditions.append(_cards.c.created_at >= criteria.created_from)
    if criteria.created_before is not None:
        conditions.append(_cards.c.created_at < criteria.created_before)
    return conditions
