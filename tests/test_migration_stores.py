"""Migration 0012: an existing database moves into the default store, codes become unique within a
store, and the downgrade refuses while another store holds anything."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, exc, text

from app import db
from tests.test_migrations import empty_database_url  # noqa: F401  (the fixture)

ROWS = (
    "INSERT INTO giftcards (id, currency, state, balance, created_at, updated_at) "
    "VALUES (1, 'USD', 'ACTIVE', 500, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO giftcard_codes (id, giftcard_id, code_type, lookup_hash, lookup_key_id, ciphertext, key_id, "
    "last4, created_at) VALUES (2, 1, 'PHYSICAL', :hash, 'lk1', :blob, 't1', '1234', CURRENT_TIMESTAMP)",
    "INSERT INTO giftcard_transactions (id, giftcard_id, code_id, trans_type, status, amount, "
    "balance_before, balance_after, partial, created_at) "
    "VALUES (3, 1, 2, 'IMPORT', 'COMPLETED', 500, 0, 500, false, CURRENT_TIMESTAMP)",
    "INSERT INTO giftcard_events (id, giftcard_id, event, created_at) "
    "VALUES (4, 1, 'CREATED', CURRENT_TIMESTAMP)",
    "INSERT INTO code_reservations (id, request_name, agency, owner, single, count, created_at) "
    "VALUES (5, 'batch', 'print', 'office', false, 1, CURRENT_TIMESTAMP)",
    "INSERT INTO reserved_codes (id, reservation_id, lookup_hash, lookup_key_id, ciphertext, key_id, last4) "
    "VALUES (6, 5, :other, 'lk1', :blob, 't1', '5678')",
    "INSERT INTO idempotency_keys (subject, key, operation, request_hash, request_key_id, response, key_id, "
    "created_at) VALUES ('till', 'k1', 'giftcardTransAdd', :hash, 'lk1', :blob, 't1', CURRENT_TIMESTAMP)",
    "INSERT INTO audit_events (id, occurred_at, action, outcome, subject, giftcard_id, count) "
    "VALUES (7, CURRENT_TIMESTAMP, 'giftcardAdd', 'OK', 'office', 1, 1)",
)
STORE_TABLES = (
    "giftcards",
    "giftcard_codes",
    "giftcard_transactions",
    "giftcard_events",
    "code_reservations",
    "reserved_codes",
)
VALUES = {"hash": b"h" * 32, "other": b"o" * 32, "blob": b"c" * 40}
CODE_IN = (
    "INSERT INTO giftcard_codes (id, giftcard_id, store_id, code_type, lookup_hash, lookup_key_id, "
    "ciphertext, key_id, last4, created_at) "
    "VALUES (:id, 1, :store, 'PHYSICAL', :hash, 'lk1', :blob, 't1', '1234', CURRENT_TIMESTAMP)"
)


def _scalars(connection, query: str) -> list:
    return list(connection.execute(text(query)).scalars())


def test_an_existing_database_moves_into_the_default_store_and_back(empty_database_url):  # noqa: F811
    # given a database at 0011 holding a card with a code, a transaction, an event, a reservation,
    # an idempotency key and an audit event
    from alembic import command

    engine = create_engine(empty_database_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0011")
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement), VALUES)
    # when it is upgraded
    command.upgrade(config, "0012")
    # then the default store exists and holds every row; audit rows name no store
    with engine.connect() as connection:
        assert _scalars(connection, "SELECT id FROM stores") == ["default"]
        for table in STORE_TABLES:
            assert _scalars(connection, f"SELECT store_id FROM {table}") == ["default"], table
        assert _scalars(connection, "SELECT store_key FROM idempotency_keys") == ["default"]
        assert _scalars(connection, "SELECT store_id FROM audit_events") == ["default"]
        assert _scalars(connection, "SELECT code_id FROM giftcard_transactions") == [2]
    # and the same code may now be in another store, but not twice in one
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO stores (id, created_at) VALUES ('b', CURRENT_TIMESTAMP)"))
        connection.execute(text(CODE_IN), {**VALUES, "id": 8, "store": "b"})
    with pytest.raises(exc.IntegrityError), engine.begin() as connection:
        connection.execute(text(CODE_IN), {**VALUES, "id": 9, "store": "default"})
    # and the downgrade refuses while store b holds a code
    with pytest.raises(RuntimeError, match="not downgrading"):
        command.downgrade(config, "0011")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM giftcard_codes WHERE id = 8"))
        connection.execute(text("DELETE FROM stores WHERE id = 'b'"))
    command.downgrade(config, "0011")
    with engine.connect() as connection:
        assert _scalars(connection, "SELECT code_id FROM giftcard_transactions") == [2]
        assert _scalars(connection, "SELECT key FROM idempotency_keys") == ["k1"]
        assert _scalars(connection, "SELECT id FROM reserved_codes") == [6]
    engine.dispose()
