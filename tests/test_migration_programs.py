"""Migration 0013: the programs table and a card's program and daily-load columns, both ways."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, exc, inspect, text

from app import db
from tests.test_migrations import empty_database_url  # noqa: F401  (the fixture)

CARD = (
    "INSERT INTO giftcards (id, currency, state, balance, created_at, updated_at) "
    "VALUES (:id, 'USD', 'ACTIVE', 500, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)
PROGRAM = (
    "INSERT INTO programs (id, store_id, code, name, currency, code_prefix, code_length, "
    "code_check_character, value_changes_allowed, expiry_kind, expiry_days, is_default, created_at, "
    "updated_at) VALUES (:id, 'default', :code, 'Gift card', 'USD', 'GC', 16, true, true, :kind, :days, "
    ":default, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def _program(connection, program_id: int, code: str, *, default: bool, kind="NONE", days=None) -> None:
    values = {"id": program_id, "code": code, "default": default, "kind": kind, "days": days}
    connection.execute(text(PROGRAM), values)


def test_cards_from_before_follow_no_program_and_the_tables_go_back(empty_database_url):  # noqa: F811
    # given a database at 0012 holding a card
    from alembic import command

    engine = create_engine(empty_database_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0012")
    with engine.begin() as connection:
        connection.execute(text(CARD), {"id": 1})
    # when it is upgraded, then the card follows no program and has loaded nothing
    command.upgrade(config, "0013")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT program_id, loaded_day, loaded_today FROM giftcards")).one()
    assert tuple(row) == (None, None, 0)
    # and the database itself keeps one default per store, a code once per store, and expiry whole
    with engine.begin() as connection:
        _program(connection, 10, "GC", default=True)
        _program(connection, 11, "OTHER", default=False)
    for program_id, code, default, kind, days in (
        (12, "TWO", True, "NONE", None),
        (13, "GC", False, "NONE", None),
        (14, "BAD", False, "AFTER_ISSUE", None),
        (15, "BAD", False, "NONE", 30),
    ):
        with pytest.raises(exc.IntegrityError), engine.begin() as connection:
            _program(connection, program_id, code, default=default, kind=kind, days=days)
    with pytest.raises(exc.IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE giftcards SET loaded_today = -1"))
    # and back at 0012 the card is still there, without the new table and columns
    command.downgrade(config, "0012")
    assert "programs" not in inspect(engine).get_table_names()
    columns = {column["name"] for column in inspect(engine).get_columns("giftcards")}
    assert not columns & {"program_id", "loaded_day", "loaded_today"}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM giftcards")).all() == [(1,)]
    engine.dispose()
