"""transactions: where each one happened (location_id)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

A nullable column: rows written before it have no location. A plain ADD COLUMN (no batch copy of
the table) on both databases; it rewrites no row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("giftcard_transactions", sa.Column("location_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # SQLite (3.35 and later) drops a column in place.
    op.drop_column("giftcard_transactions", "location_id")
