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


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("giftcard_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pin_key_ids", sa.String(length=255), nullable=True))


def downgrade() -> None:
    # The older version cannot check a keyed PIN, and dropping it would leave the code without one.
    keyed = (
        op.get_bind()
        .execute(sa.text("SELECT COUNT(*) FROM giftcard_codes WHERE pin_key_ids IS NOT NULL"))
        .scalar_one()
    )
    if keyed:
        raise RuntimeError(
            f"{keyed} codes have keyed PINs, which the previous version cannot check: "
            "not downgrading (set their PINs again with that version after a restore instead)"
        )
    with op.batch_alter_table("giftcard_codes", schema=None) as batch_op:
        batch_op.drop_column("pin_key_ids")
