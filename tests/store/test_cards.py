"""The card store: a code inserted after another writer took it is a CONFLICT; codes are unique
within a store, and every read and lock finds the cards of the caller's stores only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from app.enums import CodeType
from app.errors import ConflictError
from app.models import GiftCard, GiftCardCode
from app.store import cards as store
from tests.conftest import transaction

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def _row(services, code):
    sealed = services.vault.seal(code, CodeType.PHYSICAL)
    return GiftCardCode(code_type=CodeType.PHYSICAL.value, **sealed.columns, created_at=NOW)


def _card(session, card_id: int) -> GiftCard:
    card = session.get(GiftCard, card_id)
    assert card is not None
    return card


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
        store.add_codes(session, _card(session, other), rows)
    # then none of its codes was kept
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM giftcard_codes")).scalar_one() == 2


def test_the_same_code_is_kept_on_a_card_of_another_store(services, seed):
    seed({CodeType.PHYSICAL: "STORECODE001"})
    north = seed({CodeType.EXTERNAL: "NORTHCODE001"}, store_id="north")
    hashes = services.vault.lookup_hashes("STORECODE001")
    with transaction(services) as session:
        assert store.code_hash_taken(session, hashes, "PHYSICAL", "default")
        assert not store.code_hash_taken(session, hashes, "PHYSICAL", "north")
        (code_id,) = store.add_codes(session, _card(session, north), [_row(services, "STORECODE001")])
    with services.engine.connect() as connection:
        row = connection.execute(
            text("SELECT giftcard_id, store_id FROM giftcard_codes WHERE id = :id"), {"id": code_id}
        ).one()
    assert tuple(row) == (north, "north")


@pytest.mark.parametrize(
    ("stores", "found"),
    [
        (("default",), "default"),
        (("north",), "north"),
        (("east", "north"), "north"),
        ((), None),
        (None, "both"),
    ],
    ids=["default", "north", "two stores", "no store", "every store"],
)
def test_reads_and_locks_find_the_cards_of_the_callers_stores_only(services, seed, stores, found):
    cards = {
        "default": seed({CodeType.PHYSICAL: "SCOPEDCODE01"}, member_id="M-scoped"),
        "north": seed({CodeType.PHYSICAL: "SCOPEDCODE01"}, member_id="M-scoped", store_id="north"),
    }
    wanted = sorted(cards.values()) if found == "both" else [] if found is None else [cards[found]]
    hashes = services.vault.lookup_hashes("SCOPEDCODE01")
    by_code = services.card_store.find_by_code_hash(hashes, stores)
    assert sorted(match.card.id for match in by_code) == wanted
    assert sorted(card.id for card in services.card_store.find_by_member("M-scoped", stores)) == wanted
    for card_id in cards.values():
        expected = [card_id] if card_id in wanted else []
        assert [card.id for card in services.card_store.find_by_id(card_id, stores)] == expected
        with transaction(services) as session:
            locked = store.card_for_update(session, card_id, stores)
            assert ([] if locked is None else [locked.id]) == expected
