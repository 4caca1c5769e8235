"""codes: the id of the lookup (HMAC) key beside each lookup hash

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Rows written before this revision were hashed under GIFTCARDS_CODE_LOOKUP_KEY, the lookup keyring
of one whose id is "lk1". A downgrade drops the ids; it is only right while every row is still
under that key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = ("giftcard_codes", "reserved_codes")
_LEGACY_LOOKUP_KEY_ID = "lk1"


def upgrade() -> None:
    for table in _TABLES:
        # The default fills the existing rows; new rows must always name their key, so it goes.
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "lookup_key_id",
                    sa.String(length=32),
                    server_default=_LEGACY_LOOKUP_KEY_ID,
                    nullable=False,
                )
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("lookup_key_id", server_default=None)


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("lookup_key_id")
