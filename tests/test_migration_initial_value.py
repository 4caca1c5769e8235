"""Migration 0011: the value a card was issued with, a nullable column kept positive, both ways."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, exc, inspect, text

from app import db
from tests.test_migrations import empty_database_url  # noqa: F401  (the fixture)

CARD = (
    "INSERT INTO giftcards (id, currency, state, balance, created_at, updated_at{extra}) "
    "VALUES ({id}, 'USD', 'ACTIVE', 500, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP{value})"
)


def _card(connection, card_id: int, initial_value: int | None = None) -> None:
    extra, value = ("", "") if initial_value is None else (", initial_value", f", {initial_value}")
    connection.execute(text(CARD.format(extra=extra, id=card_id, value=value)))


def test_cards_from_before_have_no_initial_value_and_the_column_goes_back(empty_database_url):  # noqa: F811
    # given a database at 0010 holding a card
    from alembic import command

    engine = create_engine(empty_database_url)
    config = db.alembic_config(engine)
    command.upgrade(config, "0010")
    with engine.begin() as connection:
        _card(connection, 1)
    # when it is upgraded, then that card has no initial value and a new one can have one
    command.upgrade(config, "0011")
    with engine.begin() as connection:
        _card(connection, 2, 500)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, initial_value FROM giftcards ORDER BY id")).all()
    assert rows == [(1, None), (2, 500)]
    # and a value that is not positive is refused by the database itself
    for value in (0, -1):
        with pytest.raises(exc.IntegrityError), engine.begin() as connection:
            _card(connection, 3, value)
    # and back at 0010 both cards are still there, without the column
    command.downgrade(config, "0010")
    assert "initial_value" not in {column["name"] for column in inspect(engine).get_columns("giftcards")}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM giftcards ORDER BY id")).all() == [(1,), (2,)]
    engine.dispose()
