"""stores: every card, code, transaction, event, reservation and idempotency key belongs to a store

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

The ``stores`` table starts with the default store, and every existing row moves into it: each
table gains a ``store_id`` column that defaults to it (a plain ADD COLUMN: PostgreSQL rewrites no
row for a constant default). Codes and reserved codes become unique within a store, and
idempotency keys are kept per caller's stores: on SQLite those three tables are rebuilt (with
foreign keys checked at commit, since the codes table is referenced by transactions).

Audit rows from before are the default store's too (the column's default fills them in as it is
added, so the append-only triggers see no UPDATE); from now on a row names no store (NULL) only
when neither its card nor its caller had one.

No index leads with the store: on SQLite a (store_id, id) index wins plans over the selective one
(a card's code, member or transactions) whenever rows are ordered by id, and scans the whole store.
Stores filter rows their other indexes found.

A downgrade is refused while the same code is in two stores, or while a store other than the
default one holds anything: the previous version would mix them up.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DEFAULT_STORE = "default"  # app.stores.DEFAULT_STORE, fixed here as it was at this revision
STORE_TABLES = (
    "giftcards",
    "giftcard_codes",
    "giftcard_transactions",
    "giftcard_events",
    "code_reservations",
    "reserved_codes",
)


def _store_id() -> sa.Column[str]:
    return sa.Column("store_id", sa.String(64), nullable=False, server_default=DEFAULT_STORE)


def _rebuild_with_deferred_foreign_keys() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # The batch rebuild drops and renames giftcard_codes, which transactions reference.
        op.execute("PRAGMA defer_foreign_keys = ON")


def upgrade() -> None:
    stores = op.create_table(
        "stores",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(stores, [{"id": DEFAULT_STORE, "name": None, "created_at": datetime.now(UTC)}])
    for table in STORE_TABLES:
        op.add_column(table, _store_id())
    op.add_column(
        "audit_events", sa.Column("store_id", sa.String(64), nullable=True, server_default=DEFAULT_STORE)
    )
    _rebuild_with_deferred_foreign_keys()
    _unique("giftcard_codes", "uq_giftcard_codes_lookup", ["lookup_hash", "code_type", "store_id"])
    _unique("reserved_codes", "uq_reserved_codes_lookup", ["lookup_hash", "store_id"])
    _rebuild_idempotency_keys(with_store_key=True)


IDEMPOTENCY_COLUMNS = (
    "subject",
    "key",
    "operation",
    "request_hash",
    "request_key_id",
    "response",
    "key_id",
    "created_at",
)


def _rebuild_idempotency_keys(*, with_store_key: bool) -> None:
    """The table again with its new primary key, rows copied (the same on both databases)."""
    keyed = [sa.Column("store_key", sa.String(64), nullable=False, server_default=DEFAULT_STORE)]
    op.create_table(
        "idempotency_keys_rebuilt",
        *(keyed if with_store_key else []),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("request_key_id", sa.String(32), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*(["store_key"] if with_store_key else []), "subject", "key"),
    )

    def table(name: str) -> sa.TableClause:
        return sa.table(name, *(sa.column(column) for column in IDEMPOTENCY_COLUMNS))

    copy = sa.select(*table("idempotency_keys").c)
    op.execute(table("idempotency_keys_rebuilt").insert().from_select(IDEMPOTENCY_COLUMNS, copy))
    op.drop_table("idempotency_keys")
    op.rename_table("idempotency_keys_rebuilt", "idempotency_keys")
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def _unique(table: str, name: str, columns: list[str]) -> None:
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(name, type_="unique")
        batch.create_unique_constraint(name, columns)


def _refuse_downgrade_with_stores() -> None:
    bind = op.get_bind()

    def outside_default(table: str, column: str) -> int:
        query = (
            sa.select(sa.func.count()).select_from(sa.table(table)).where(sa.column(column) != DEFAULT_STORE)
        )
        return int(bind.execute(query).scalar_one())

    others = outside_default("stores", "id")
    rows = sum(outside_default(table, "store_id") for table in STORE_TABLES)
    if others or rows:
        raise RuntimeError(
            f"{others} stores besides the default one and {rows} rows of theirs: the previous version "
            "has no stores, so not downgrading (restore a backup taken before the upgrade instead)"
        )


def downgrade() -> None:
    _refuse_downgrade_with_stores()
    # Replays kept for callers of several stores or of every store: the previous version keys
    # them by subject alone, so they could collide; they only ever answer retries.
    op.execute(sa.text("DELETE FROM idempotency_keys WHERE store_key <> :d").bindparams(d=DEFAULT_STORE))
    _rebuild_with_deferred_foreign_keys()
    _rebuild_idempotency_keys(with_store_key=False)
    _unique("reserved_codes", "uq_reserved_codes_lookup", ["lookup_hash"])
    _unique("giftcard_codes", "uq_giftcard_codes_lookup", ["lookup_hash", "code_type"])
    op.drop_column("audit_events", "store_id")
    for table in reversed(STORE_TABLES):
        op.drop_column(table, "store_id")  # in place, on SQLite too (3.35 and later)
    op.drop_table("stores")
