"""Which program a new card follows: the one it names, within its store, else the store's default."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest

from app.domain.programs import program_for_card
from app.errors import BadUserInputError, ConflictError, NotFoundError
from app.store import programs as store
from tests.conftest import transaction

COLUMNS = {
    "name": "Gift card",
    "currency": "USD",
    "code_prefix": "",
    "code_length": 13,
    "code_check_character": False,
    "value_changes_allowed": True,
    "expiry_kind": "NONE",
}


def _program(services, store_id: str, code: str, *, default: bool) -> int:
    with contextlib.suppress(ConflictError):  # the PostgreSQL database outlives a test
        services.stores.add(store_id, None)
    with transaction(services) as session:
        columns = {**COLUMNS, "code": code, "is_default": default}
        return store.add_program(session, store_id, columns, datetime.now(UTC)).id


def test_a_card_follows_the_program_it_names_else_its_stores_default(services):
    # given store a with a default and another program, and store b with a program of its own
    default = _program(services, "a", "DEF", default=True)
    other = _program(services, "a", "OTHER", default=False)
    of_b = _program(services, "b", "B", default=True)
    with transaction(services) as session:
        # then a card of a follows the program it names, or the default
        named = program_for_card(session, "a", str(other))
        assert named is not None and named.id == other
        taken = program_for_card(session, "a", None)
        assert taken is not None and taken.id == default
        # and a store without programs has none
        assert program_for_card(session, "default", None) is None
        # and b's program is no program of a's, answered as a missing one
        with pytest.raises(NotFoundError) as foreign:
            program_for_card(session, "a", str(of_b))
        with pytest.raises(NotFoundError) as missing:
            program_for_card(session, "a", "999999")
        assert foreign.value.message == missing.value.message
        assert foreign.value.field == "program_id"
        with pytest.raises(BadUserInputError):
            program_for_card(session, "a", "GC")
