"""Alembic migrations: upgrade from empty, refuse to serve an outdated schema, say what to run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, exc, inspect, text
from starlette.testclient import TestClient

from app import cli, db
from app.errors import ConfigurationError
from app.http import create_app
from tests.conftest import make_settings


def test_upgrade_creates_every_table_and_reaches_head(database_url):
    engine = create_engine(database_url)
    assert db.current_revision(engine) == db.head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"giftcards", "giftcard_codes", "giftcard_transactions", "alembic_version"} <= tables
    engine.dispose()


def test_migrations_match_the_models(database_url):
    # a column or constraint added to app/models.py without a migration shows up here
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = create_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_server_refuses_a_database_migrated_by_a_newer_version(tmp_path):
    settings = make_settings(f"sqlite:///{tmp_path}/newer.db", tmp_path)
    engine = create_engine(settings.database_url)
    db.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'fffffffffff'")
    with pytest.raises(ConfigurationError, match="newer version"):
        db.check_schema(engine)
    engine.dispose()


def test_server_refuses_an_empty_database(tmp_path):
    settings = make_settings(f"sqlite:///{tmp_path}/empty.db", tmp_path)
    app = create_app(settings)
    with pytest.raises(ConfigurationError, match="run `giftcards db upgrade`"), TestClient(app):
        pass


def test_serve_command_says_which_command_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    assert cli.main(["serve", "--port", "1"]) == 2
    assert "giftcards db upgrade" in capsys.readouterr().err


def test_db_commands_upgrade_then_report_current(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/fresh.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    assert cli.main(["db", "current"]) == 1
    assert cli.main(["db", "upgrade"]) == 0
    assert cli.main(["db", "current"]) == 0
    assert f"current: {db.head_revision()}" in capsys.readouterr().out


def test_unsupported_database_url(tmp_path):
    with pytest.raises(ConfigurationError, match="unsupported database"):
        db.create_db_engine(make_settings("mysql://x@127.0.0.1/db", tmp_path))


def test_code_rows_from_before_lookup_key_ids_are_under_the_single_lookup_key(tmp_path):
    # given a database at 0004 holding a code row (hashed under GIFTCARDS_CODE_LOOKUP_KEY)
    from alembic import command
    from sqlalchemy import text

    from app.keyrings import LEGACY_LOOKUP_KEY_ID

    engine = create_engine(f"sqlite:///{tmp_path}/before.db")
    config = db.alembic_config(engine)
    command.upgrade(config, "0004")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO giftcards (id, currency, state, balance, created_at, updated_at) "
                "VALUES (1, 'USD', 'PENDING', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO giftcard_codes (giftcard_id, code_type, lookup_hash, ciphertext, key_id, last4, "
                "created_at) VALUES (1, 'PHYSICAL', :h, :c, 't1', '1234', CURRENT_TIMESTAMP)"
            ),
            {"h": b"h" * 32, "c": b"c" * 40},
        )
    # when it is upgraded, then the row names the id that key has as a ring of one
    command.upgrade(config, "head")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT lookup_key_id FROM giftcard_codes")).all() == [
            (LEGACY_LOOKUP_KEY_ID,)
        ]
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database with no tables yet, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    server = create_engine(request.getfixturevalue("postgres_url"), isolation_level="AUTOCOMMIT")
    name = f"giftcards_migrate_{uuid.uuid4().hex[:10]}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def test_audit_rows_from_before_counts_count_one_and_the_table_stays_append_only(empty_database_url):
    # given a database at 0007 holding an audit event
    from alembic import command

    engine = create_engine(empty_database_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0007")
    insert = text(
        "INSERT INTO audit_events (occurred_at, action, outcome) "
        "VALUES (CURRENT_TIMESTAMP, 'giftcardAdd', 'OK')"
    )
    with engine.begin() as connection:
        connection.execute(insert)
    # when it is upgraded, then the event counts 1, as does one written without a count
    command.upgrade(config, "head")
    with engine.begin() as connection:
        connection.execute(insert)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count FROM audit_events ORDER BY id")).all() == [(1,), (1,)]
    # and the table still refuses updates and deletes, also after going back to 0007
    _assert_append_only(engine)
    command.downgrade(config, "0007")
    _assert_append_only(engine)
    engine.dispose()


def test_transactions_from_before_locations_keep_no_location_both_ways(empty_database_url):
    # given a database at 0008 holding a card and a transaction
    from alembic import command

    engine = create_engine(empty_database_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0008")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO giftcards (id, currency, state, balance, created_at, updated_at) "
                "VALUES (1, 'USD', 'ACTIVE', 500, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        _add_transaction(connection)
    # when it is upgraded, then the row is kept with no location, and a new one can name one
    command.upgrade(config, "head")
    with engine.begin() as connection:
        _add_transaction(connection, location_id="S")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT amount, location_id FROM giftcard_transactions ORDER BY id")
        ).all()
    assert rows == [(500, None), (500, "S")]
    # and back at 0008 both rows are still there, without the column
    command.downgrade(config, "0008")
    assert "location_id" not in {
        column["name"] for column in inspect(engine).get_columns("giftcard_transactions")
    }
    with engine.connect() as connection:
        assert connection.execute(text("SELECT amount FROM giftcard_transactions")).all() == [(500,), (500,)]
    engine.dispose()


def _add_transaction(connection, **columns) -> None:
    """A ledger row of $5.00 on card 1, with ``columns`` beside the ones every revision has."""
    values = {
        "giftcard_id": 1,
        "trans_type": "IMPORT",
        "status": "COMPLETED",
        "amount": 500,
        "balance_before": 0,
        "balance_after": 500,
        "partial": False,
        **columns,
    }
    statement = (  # the column names are this function's own
        f"INSERT INTO giftcard_transactions ({', '.join(values)}, created_at) "
        f"VALUES ({', '.join(':' + name for name in values)}, CURRENT_TIMESTAMP)"
    )
    connection.execute(text(statement), values)


def _assert_append_only(engine) -> None:
    for statement in ("UPDATE audit_events SET outcome = 'X'", "DELETE FROM audit_events"):
        with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


def _insert_old_card_with_a_code_and_a_transaction(engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO giftcards (id, currency, state, balance, created_at, updated_at) "
                "VALUES (2147483647, 'USD', 'ACTIVE', 100, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO giftcard_codes (id, giftcard_id, code_type, lookup_hash, lookup_key_id, "
                "ciphertext, key_id, last4, created_at) "
                "VALUES (3, 2147483647, 'PHYSICAL', :h, 'lk1', :c, 't1', '1234', CURRENT_TIMESTAMP)"
            ),
            {"h": b"h" * 32, "c": b"c" * 40},
        )
        connection.execute(
            text(
                "INSERT INTO giftcard_transactions (id, giftcard_id, code_id, trans_type, status, amount, "
                "balance_before, balance_after, partial, created_at) "
                "VALUES (5, 2147483647, 3, 'IMPORT', 'COMPLETED', 100, 0, 100, false, CURRENT_TIMESTAMP)"
            )
        )


def test_rows_from_before_64_bit_ids_keep_theirs_and_new_rows_get_large_ones(empty_database_url):
    # given a database at 0008 holding a card (the largest 32-bit id), its code and a transaction
    from alembic import command
    from sqlalchemy import insert

    from app.models import GiftCard, LedgerEntry

    cards = GiftCard.__table__  # type: ignore[attr-defined]
    engine = create_engine(empty_database_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0008")
    _insert_old_card_with_a_code_and_a_transaction(engine)
    # when it is upgraded, and a transaction is added as the server adds one
    command.upgrade(config, "head")
    entry = {"giftcard_id": 2147483647, "trans_type": "ADD", "status": "COMPLETED", "amount": 1}
    with engine.begin() as connection:
        connection.execute(
            insert(LedgerEntry).values(**entry, balance_after=101, created_at=text("CURRENT_TIMESTAMP"))
        )
        card_id = connection.execute(
            insert(cards)
            .values(currency="USD", state="PENDING", balance=0, created_at=text("CURRENT_TIMESTAMP"))
            .values(updated_at=text("CURRENT_TIMESTAMP"))
            .returning(cards.c.id)
        ).scalar_one()
    # then the old rows keep their ids, and the new ones are 64-bit and sort after them
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM giftcards ORDER BY id")).scalars().all() == [
            2147483647,
            card_id,
        ]
        entries = connection.execute(
            text("SELECT id, giftcard_id FROM giftcard_transactions ORDER BY id")
        ).all()
        assert connection.execute(text("SELECT id, giftcard_id FROM giftcard_codes")).all() == [
            (3, 2147483647)
        ]
    assert card_id > 2**31 and entries[0] == (5, 2147483647)
    assert 2**31 < entries[1][0] < 2**63 and entries[1][1] == 2147483647
    # and going back is refused while a row has a 64-bit id, then allowed once none has
    with pytest.raises(RuntimeError, match="1 rows of giftcards have 64-bit ids"):
        command.downgrade(config, "0008")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM giftcard_transactions WHERE id > 5"))
        connection.execute(text("DELETE FROM giftcards WHERE id > 2147483647"))
    command.downgrade(config, "0008")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM giftcard_transactions")).scalars().all() == [5]
    engine.dispose()
