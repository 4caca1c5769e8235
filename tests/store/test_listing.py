"""The card lister: pages read either way with the nearest card behind the cursor in the same
statement, the live-code conditions, and the cards holding a code (per type, live, in the stores)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from app.enums import CodeType
from app.models import GiftCardCode
from app.store.listing import CardCriteria, CardLister
from tests.conftest import add_store, transaction


def _read(services, limit: int, **criteria) -> tuple[list[int], bool, bool]:
    found = CardLister(services.engine).list_cards(CardCriteria(stores=("default",), **criteria), limit)
    return [card.id for card in found.cards], found.more, found.behind


def test_pages_are_read_either_way_and_know_what_lies_behind(services, seed):
    cards = [seed({CodeType.PHYSICAL: f"CARD{i:08d}"}) for i in range(5)]
    # (ids in the order read, more, behind)
    assert _read(services, 2) == (cards[:2], True, False)
    assert _read(services, 2, descending=True) == ([cards[4], cards[3]], True, False)
    assert _read(services, 2, after_id=cards[1]) == (cards[2:4], True, True)
    assert _read(services, 2, after_id=cards[2], descending=True) == ([cards[1], cards[0]], False, True)
    assert _read(services, 5, after_id=cards[4]) == ([], False, True)
    assert _read(services, 5, after_id=cards[0], descending=True) == ([], False, True)
    # behind counts matching cards only: none matches at or before the cursor
    assert _read(services, 2, after_id=cards[1], card_ids=tuple(cards[2:])) == (cards[2:4], True, False)
    # a cursor between ids (its card gone from the listing) works the same
    assert _read(services, 9, after_id=cards[2] + 1, card_ids=(cards[0], cards[4])) == (
        [cards[4]],
        False,
        True,
    )


def test_live_code_conditions_ignore_revoked_codes(services, seed):
    physical = seed({CodeType.PHYSICAL: "PHYS00000001"})
    revoked = seed(
        {CodeType.PHYSICAL: "PHYS00000002", CodeType.EXTERNAL: "EXTN00000002"}, revoked={CodeType.PHYSICAL}
    )
    both = seed({CodeType.PHYSICAL: "PHYS00000003", CodeType.EXTERNAL: "EXTN00000003"})
    assert _read(services, 9, live_code_types=("PHYSICAL",))[0] == [physical, both]
    assert _read(services, 9, no_live_code_types=("PHYSICAL",))[0] == [revoked]
    assert _read(services, 9, live_code_types=("PHYSICAL", "EXTERNAL"))[0] == [both]
    assert _read(services, 9, live_code_types=("EXTERNAL",), no_live_code_types=("PHYSICAL",))[0] == [revoked]


def test_code_holders_are_the_live_codes_of_the_types_in_the_stores(services, seed):
    add_store(services, "north")
    physical = seed({CodeType.PHYSICAL: "SAME00000001"})
    external = seed({CodeType.EXTERNAL: "SAME00000001"})
    north = seed({CodeType.PHYSICAL: "SAME00000001"}, store_id="north")
    seed({CodeType.PERSONAL: "SAME00000001"}, member_id="m1", revoked={CodeType.PERSONAL})
    lister, hashes = CardLister(services.engine), services.vault.lookup_hashes("SAME00000001")
    assert sorted(lister.code_holders(hashes, ("PHYSICAL", "EXTERNAL", "PERSONAL"), ("default",))) == [
        (physical, "PHYSICAL"),
        (external, "EXTERNAL"),
    ]
    assert lister.code_holders(hashes, ("PHYSICAL",), ("north",)) == [(north, "PHYSICAL")]
    assert sorted(lister.code_holders(hashes, ("PHYSICAL",), None)) == [
        (physical, "PHYSICAL"),
        (north, "PHYSICAL"),
    ]
    assert lister.code_holders(hashes, ("PERSONAL",), None) == []
    assert lister.code_holders(services.vault.lookup_hashes("NONE00000001"), ("PHYSICAL",), None) == []
    # revoking a code takes its card out
    with transaction(services) as session:
        session.execute(
            update(GiftCardCode)
            .where(col(GiftCardCode.giftcard_id) == north)
            .values(revoked_at=GiftCardCode.created_at)
        )
    assert lister.code_holders(hashes, ("PHYSICAL",), None) == [(physical, "PHYSICAL")]
