"""ledger: holds, balance before, addressing

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("giftcard_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("balance_before", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("authorized_amount", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("partial", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("code_type", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("code_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_giftcard_transactions_open_holds", ["giftcard_id", "status"], unique=False)
        batch_op.create_foreign_key("fk_giftcard_transactions_code_id", "giftcard_codes", ["code_id"], ["id"])
        batch_op.create_check_constraint(
            "ck_giftcard_transactions_status", "status IN ('AUTHORIZED', 'COMPLETED', 'CANCELLED')"
        )


def downgrade() -> None:
    with op.batch_alter_table("giftcard_transactions", schema=None) as batch_op:
        batch_op.drop_constraint("ck_giftcard_transactions_status", type_="check")
        batch_op.drop_constraint("fk_giftcard_transactions_code_id", type_="foreignkey")
        batch_op.drop_index("ix_giftcard_transactions_open_holds")
        batch_op.drop_column("code_id")
        batch_op.drop_column("code_type")
        batch_op.drop_column("partial")
        batch_op.drop_column("settled_at")
        batch_op.drop_column("hold_expires_at")
        batch_op.drop_column("authorized_amount")
        batch_op.drop_column("balance_before")
