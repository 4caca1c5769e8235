"""What all cards hold together: the outstanding balance per currency (the metrics show it)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from app.db import READ_ONLY
from app.models import GiftCard

_cards = GiftCard.__table__  # type: ignore[attr-defined]


def outstanding_by_currency(engine: Engine) -> dict[str, int]:
    """Minor units per currency over every card, whatever its state (one aggregate statement)."""
    statement = select(_cards.c.currency, func.sum(_cards.c.balance)).group_by(_cards.c.currency)
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
        return {str(currency): int(total or 0) for currency, total in connection.execute(statement)}
