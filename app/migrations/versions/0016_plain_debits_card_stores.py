"""plain debits hold the card, not only its code, to the caller's stores

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08

PostgreSQL only; nothing on SQLite, and no table changes. ``giftcard_plain_debit`` checked that the
code it found is in one of the caller's stores, and then debited the code's card wherever it was. A
code is always filed under its card's store, so no request reached the difference; but a row that
disagreed (a fault, a hand edit) let a caller of the code's store debit a card of another store,
which the full path refuses (app.domain.addressing reads the card only in the caller's stores). The
function now leaves such a debit to the full path, which refuses it. Replaced in place: same
arguments, same answers otherwise.
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_CODE_IN_STORES = "       OR (p_stores IS NOT NULL AND NOT v_code.store_id = ANY (p_stores))\n"
_CARD_IN_STORES = "       OR (p_stores IS NOT NULL AND NOT v_card.store_id = ANY (p_stores))\n"


def _functions() -> tuple[str, str]:
    """The function as revision 0015 made it, and as this one makes it; each replaces the other."""
    made = importlib.import_module("app.migrations.versions.0015_one_statement_debits")._FUNCTION
    before = made.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    assert before.count(_CODE_IN_STORES) == 1, "revision 0015's function is not the one this revision edits"
    return before, before.replace(_CODE_IN_STORES, _CODE_IN_STORES + _CARD_IN_STORES)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_functions()[1])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_functions()[0])
