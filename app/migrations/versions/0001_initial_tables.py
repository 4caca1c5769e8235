"""initial tables

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "giftcards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('PENDING', 'ACTIVE', 'BLOCKED', 'DEACTIVATED')", name="ck_giftcards_state"
        ),
        sa.CheckConstraint("balance >= 0", name="ck_giftcards_balance_nonnegative"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("giftcards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_giftcards_member_id"), ["member_id"], unique=False)

    op.create_table(
        "giftcard_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("giftcard_id", sa.Integer(), nullable=False),
        sa.Column("code_type", sa.String(length=16), nullable=False),
        sa.Column("lookup_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("pin_hash", sa.String(length=255), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "code_type IN ('PHYSICAL', 'PERSONAL', 'EXTERNAL', 'SHORT_PERSONAL')",
            name="ck_giftcard_codes_type",
        ),
        sa.ForeignKeyConstraint(
            ["giftcard_id"],
            ["giftcards.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lookup_hash", "code_type", name="uq_giftcard_codes_lookup"),
    )
    with op.batch_alter_table("giftcard_codes", schema=None) as batch_op:
        batch_op.create_index("ix_giftcard_codes_giftcard_id", ["giftcard_id"], unique=False)

    op.create_table(
        "giftcard_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("giftcard_id", sa.Integer(), nullable=False),
        sa.Column("trans_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=True),
        sa.Column("ref_no", sa.String(length=128), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount <> 0", name="ck_giftcard_transactions_amount_nonzero"),
        sa.CheckConstraint("balance_after >= 0", name="ck_giftcard_transactions_balance_after"),
        sa.ForeignKeyConstraint(
            ["giftcard_id"],
            ["giftcards.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("giftcard_transactions", schema=None) as batch_op:
        batch_op.create_index("ix_giftcard_transactions_giftcard_id", ["giftcard_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("giftcard_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_giftcard_transactions_giftcard_id")

    op.drop_table("giftcard_transactions")
    with op.batch_alter_table("giftcard_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_giftcard_codes_giftcard_id")

    op.drop_table("giftcard_codes")
    with op.batch_alter_table("giftcards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_giftcards_member_id"))

    op.drop_table("giftcards")
