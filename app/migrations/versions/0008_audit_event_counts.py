"""audit events: a count, so that one row stands for a minute of refusals

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

Refusals are counted in memory and written as one row per subject, operation, outcome and minute;
every other event counts 1, as do the rows written before this revision. The column is added with
a plain ALTER TABLE, not a batch operation: on SQLite a batch would copy the table into a new one
and lose the triggers that keep it append-only, and ADD COLUMN with a constant default rewrites no
row (so no UPDATE trigger fires) on either database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("count", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    # SQLite (3.35 and later) drops a column in place, keeping the table's triggers.
    op.drop_column("audit_events", "count")
