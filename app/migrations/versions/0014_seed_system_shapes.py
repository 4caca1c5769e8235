"""the seed systems' shapes: who changed a card last and where it was issued, authorization codes,
payment tokens

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

Plain ADD COLUMNs and a new table; no existing row is rewritten:

- ``giftcards.updated_by``: the token subject of a card's last change (None: unchanged since, or
  changed before the column existed);
- ``giftcards.location_id``: where the card was issued (Square's location of a new card), free text;
- ``giftcard_transactions.auth_code_hash``: the SHA-256 of an authorization's ``authCode`` (128
  random bits, so a plain hash cannot be walked back), unique, for capture and cancel by it;
- ``payment_tokens``: single-use tokens an untrusted front-end exchanges a code for (DESIGN §12),
  kept only as a keyed hash with the id of its key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # app.models.ID


def upgrade() -> None:
    op.add_column("giftcards", sa.Column("updated_by", sa.String(128), nullable=True))
    op.add_column("giftcards", sa.Column("location_id", sa.String(64), nullable=True))
    op.add_column("giftcard_transactions", sa.Column("auth_code_hash", sa.LargeBinary(32), nullable=True))
    op.create_index(
        "uq_giftcard_transactions_auth_code_hash", "giftcard_transactions", ["auth_code_hash"], unique=True
    )
    op.create_table(
        "payment_tokens",
        sa.Column("id", ID, primary_key=True),
        sa.Column("store_id", sa.String(64), server_default="default", nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("token_key_id", sa.String(32), nullable=False),
        sa.Column(
            "giftcard_id",
            ID,
            sa.ForeignKey("giftcards.id", name="fk_payment_tokens_giftcard_id"),
            nullable=False,
        ),
        sa.Column(
            "code_id",
            ID,
            sa.ForeignKey("giftcard_codes.id", name="fk_payment_tokens_code_id"),
            nullable=False,
        ),
        sa.Column("subject", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transaction_id", ID, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_payment_tokens_token_hash"),
    )
    op.create_index("ix_payment_tokens_expires_at", "payment_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_payment_tokens_expires_at", "payment_tokens")
    op.drop_table("payment_tokens")
    op.drop_index("uq_giftcard_transactions_auth_code_hash", "giftcard_transactions")
    op.drop_column("giftcard_transactions", "auth_code_hash")
    op.drop_column("giftcards", "location_id")
    op.drop_column("giftcards", "updated_by")
