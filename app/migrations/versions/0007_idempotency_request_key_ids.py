"""idempotency keys: the id of the lookup (HMAC) key that digested the request

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

A retry is matched by an HMAC of its request under the lookup keys, so an old lookup key is in use
while stored requests digested under it remain. Rows written before this revision have no id and
count against every lookup key until they expire (GIFTCARDS_IDEMPOTENCY_RETENTION_HOURS).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("request_key_id")
