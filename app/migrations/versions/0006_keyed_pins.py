"""codes: the PIN key ids beside each keyed PIN value

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

PINs become HMAC-SHA256 values under the PIN keyring; ``pin_key_ids`` names the keys that made a
value (innermost first, comma-separated, several after a rotation wrapped it). Rows written before
this revision keep their argon2 hash with no key ids, and a correct PIN replaces it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('giftcard_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pin_key_ids', sa.String(length=255), nullable=True))


def downgrade() -> None:
    # Keyed values mean nothing to the older version: those PINs stop verifying until set again.
    with op.batch_alter_table('giftcard_codes', schema=None) as batch_op:
        batch_op.drop_column('pin_key_ids')
