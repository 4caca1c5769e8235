"""card lifecycle, events, idempotency keys, code reservations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "code_reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_name", sa.String(length=128), nullable=False),
        sa.Column("agency", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("single", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("code_reservations", schema=None) as batch_op:
        batch_op.create_index("ix_code_reservations_request_name", ["request_name", "id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", "key"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)

    op.create_table(
        "giftcard_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("giftcard_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["giftcard_id"],
            ["giftcards.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("giftcard_events", schema=None) as batch_op:
        batch_op.create_index("ix_giftcard_events_giftcard_id", ["giftcard_id", "id"], unique=False)

    op.create_table(
        "reserved_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=False),
        sa.Column("lookup_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["code_reservations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lookup_hash", name="uq_reserved_codes_lookup"),
    )
    with op.batch_alter_table("reserved_codes", schema=None) as batch_op:
        batch_op.create_index("ix_reserved_codes_reservation_id", ["reservation_id"], unique=False)

    with op.batch_alter_table("giftcards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("usable_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("note", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("source_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("ref_no", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("giftcards", schema=None) as batch_op:
        batch_op.drop_column("ref_no")
        batch_op.drop_column("source_id")
        batch_op.drop_column("note")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("usable_from")

    with op.batch_alter_table("reserved_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_reserved_codes_reservation_id")

    op.drop_table("reserved_codes")
    with op.batch_alter_table("giftcard_events", schema=None) as batch_op:
        batch_op.drop_index("ix_giftcard_events_giftcard_id")

    op.drop_table("giftcard_events")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_created_at")

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("code_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_code_reservations_request_name")

    op.drop_table("code_reservations")
