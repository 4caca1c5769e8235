"""The card store's writes: a code inserted after another writer took it is a CONFLICT."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from app.enums import CodeType
from app.errors import ConflictError
from app.models import GiftCardCode
from app.store import cards as store
from tests.conftest import transaction

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def _row(services, code):
    sealed = services.vault.seal(code, CodeType.PHYSICAL)
    return GiftCardCode(code_type=CodeType.PHYSICAL.value, **sealed.columns, created_at=NOW)


def test_a_code_taken_by_another_writer_is_a_conflict_and_inserts_nothing(services, seed):
    # given a card holding a code (as a writer that won the race left it)
    seed({CodeType.PHYSICAL: "RACEDCODE001"})
    other = seed({CodeType.EXTERNAL: "OTHERCODE001"})
    # when the loser inserts the same code, past the check
    rows = [_row(services, "FREECODE0001"), _row(services, "RACEDCODE001")]
    with (
        pytest.raises(ConflictError, match="a code of that type already exists"),
        transaction(services) as session,
    ):
        store.add_codes(session, other, rows)
    # then none of its codes was kept
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM giftcard_codes")).scalar_one() == 2
