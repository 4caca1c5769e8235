"""programs: a store's rules for its cards, and the columns a card needs to follow them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

A new ``programs`` table (one default per store, by a partial unique index both databases have),
and three plain ADD COLUMNs on ``giftcards``: the card's program, and the UTC day and amount
loaded on it, for the daily limit. No existing row is rewritten; existing cards follow no program.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # app.models.ID


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_programs_store_id"), nullable=False
        ),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("code_prefix", sa.String(16), nullable=False),
        sa.Column("code_length", sa.Integer(), nullable=False),
        sa.Column("code_check_character", sa.Boolean(), nullable=False),
        sa.Column("denominations", sa.String(1000), nullable=True),
        sa.Column("min_value", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.BigInteger(), nullable=True),
        sa.Column("value_changes_allowed", sa.Boolean(), nullable=False),
        sa.Column("expiry_kind", sa.String(16), nullable=False),
        sa.Column("expiry_days", sa.Integer(), nullable=True),
        sa.Column("max_balance", sa.BigInteger(), nullable=True),
        sa.Column("max_daily_load", sa.BigInteger(), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("store_id", "code", name="uq_programs_store_code"),
        sa.CheckConstraint(
            "expiry_kind IN ('NONE', 'AFTER_ISSUE', 'AFTER_ACTIVITY')", name="ck_programs_expiry_kind"
        ),
        sa.CheckConstraint("(expiry_kind = 'NONE') = (expiry_days IS NULL)", name="ck_programs_expiry_days"),
    )
    op.create_index(
        "uq_programs_store_default",
        "programs",
        ["store_id"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )
    op.add_column("giftcards", sa.Column("program_id", ID, nullable=True))
    op.add_column("giftcards", sa.Column("loaded_day", sa.Date(), nullable=True))
    # The CHECK is the column's, so that SQLite takes it in a plain ADD COLUMN (as in 0011).
    op.execute(
        "ALTER TABLE giftcards ADD COLUMN loaded_today BIGINT DEFAULT 0 NOT NULL "
        "CONSTRAINT ck_giftcards_loaded_today_nonnegative CHECK (loaded_today >= 0)"
    )
    op.create_index("ix_giftcards_program_id", "giftcards", ["program_id"])


def downgrade() -> None:
    op.drop_index("ix_giftcards_program_id", "giftcards")
    # In place, on SQLite too (3.35 and later); the CHECK goes with its column.
    op.drop_column("giftcards", "loaded_today")
    op.drop_column("giftcards", "loaded_day")
    op.drop_column("giftcards", "program_id")
    op.drop_index("uq_programs_store_default", "programs")
    op.drop_table("programs")
