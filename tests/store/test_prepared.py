"""Prepared statements: values bound as SQLAlchemy binds them, and statements sent together (one
pipeline on psycopg) answering each its own rows, in order, as if sent apart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, TypeDecorator, bindparam, literal, select

from app.store.prepared import Prepared, run_together


class Marked(TypeDecorator[str]):
    """A string bound with a mark: bound twice, it would carry two."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return None if value is None else f"{value}!"


def test_statements_sent_together_answer_in_order_and_share_their_values_unchanged(services):
    dialect = services.engine.dialect
    first = Prepared(select(literal(1).label("one"), bindparam("word", type_=Marked()).label("w")), dialect)
    second = Prepared(select(bindparam("word", type_=Marked()).label("w")), dialect)
    params = {"word": "card"}
    with services.engine.connect() as connection:
        rows = run_together(connection.connection, (first, params), (second, params))
        connection.rollback()
    assert [[tuple(row) for row in answer] for answer in rows] == [[(1, "card!")], [("card!",)]]
    assert params == {"word": "card"}  # each bound a copy: the next statement got it as given
