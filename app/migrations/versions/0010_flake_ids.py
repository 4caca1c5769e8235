"""64-bit ids: every id column, and every column naming one, is a BIGINT on PostgreSQL

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

New rows take their ids from app/ids.py (time-ordered, not dense, one generator for every kind),
written by the insert itself; the sequences stay but are no longer used by the server. Existing
rows keep their ids. SQLite needs nothing: an INTEGER PRIMARY KEY is already 64-bit, and changing
its declared type would stop it being the rowid. Each table is altered in one statement, so it is
rewritten once; a rewrite fires no row trigger, so the audit trail stays append-only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Each table, with its id column and those naming a row of another table.
ID_COLUMNS = {
    "giftcards": ("id",),
    "giftcard_codes": ("id", "giftcard_id"),
    "giftcard_transactions": ("id", "giftcard_id", "code_id"),
    "giftcard_events": ("id", "giftcard_id"),
    "code_reservations": ("id",),
    "reserved_codes": ("id", "reservation_id"),
    "audit_events": ("id", "giftcard_id"),
}
MAX_32_BIT_ID = 2**31 - 1


def _alter(type_name: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in ID_COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} TYPE {type_name}" for column in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _alter("BIGINT")
    # Each starting server process claims a node number here (app.db.claim_id_node).
    op.create_table(
        "id_nodes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    # The previous version reads ids as 32-bit integers: it could not address a row with a new id.
    bind = op.get_bind()
    for table in ID_COLUMNS:
        rows = sa.select(sa.func.count()).select_from(sa.table(table)).where(sa.column("id") > MAX_32_BIT_ID)
        count = bind.execute(rows).scalar_one()
        if count:
            raise RuntimeError(
                f"{count} rows of {table} have 64-bit ids, which the previous version cannot address: "
                "not downgrading (restore a backup taken before the upgrade instead)"
            )
    op.drop_table("id_nodes")
    _alter("INTEGER")
