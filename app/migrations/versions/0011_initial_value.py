"""giftcards: the value a card was issued with (initial_value)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

A nullable column with its own CHECK: cards issued before it, or without a value, have none. A
plain ADD COLUMN on both databases (the CHECK is the column's, which SQLite accepts there); it
rewrites no row.
"""

from __future__ import annotations

from alembic import op


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE giftcards ADD COLUMN initial_value BIGINT "
        "CONSTRAINT ck_giftcards_initial_value_positive CHECK (initial_value > 0)"
    )


def downgrade() -> None:
    # The CHECK belongs to the column and goes with it (SQLite 3.35 and later drops it in place).
    op.drop_column("giftcards", "initial_value")
