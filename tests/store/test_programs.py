"""The programs store: the daily-load condition in the statement that moves a card's money, the
store's default program, and whether a program has cards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from app.models import GiftCard
from app.store import programs as store
from tests.conftest import transaction
from tests.test_concurrency import in_parallel

TODAY = date(2030, 6, 1)
_cards = GiftCard.__table__  # type: ignore[attr-defined]


def _load(services, card_id: int, amount: int, day: date = TODAY, limit: int | None = 120) -> bool:
    """A credit as the ledger makes one: balance and day's loads in one conditional UPDATE."""
    values, within = store.daily_load(amount, day, limit)
    statement = (
        update(_cards)
        .where(_cards.c.id == card_id, within)
        .values(balance=_cards.c.balance + amount, **values)
    )
    with transaction(services) as session:
        return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]


def _loaded(services, card_id: int) -> tuple[int, date | None, int]:
    with services.engine.connect() as connection:
        row = connection.execute(
            _cards.select()
            .with_only_columns(_cards.c.balance, _cards.c.loaded_day, _cards.c.loaded_today)
            .where(_cards.c.id == card_id)
        ).one()
    return row.balance, row.loaded_day, row.loaded_today


def test_loads_of_a_day_stay_within_the_limit_and_a_new_day_starts_again(services, seed):
    # given two cards
    card, other = seed({}), seed({})
    # when 100 then 50 are loaded on one day with a limit of 120
    assert _load(services, card, 100)
    assert not _load(services, card, 50)
    # then the second is refused and nothing of it was written; the other card is untouched
    assert _loaded(services, card) == (100, TODAY, 100)
    assert _loaded(services, other) == (0, None, 0)
    # and 20 more fit, and the next day counts from zero
    assert _load(services, card, 20)
    assert _load(services, card, 120, TODAY + timedelta(days=1))
    assert _loaded(services, card) == (240, TODAY + timedelta(days=1), 120)


def test_without_a_limit_loads_are_still_counted(services, seed):
    card = seed({})
    assert _load(services, card, 10**9, limit=None)
    assert _loaded(services, card) == (10**9, TODAY, 10**9)


def test_loads_at_once_never_pass_the_limit(services, seed):
    # given a card, and eight loads of 50 at once against a daily limit of 200
    card = seed({})
    results = in_parallel(8, lambda _: _load(services, card, 50, limit=200))
    # then exactly four pass
    assert results.count(True) == 4
    assert _loaded(services, card) == (200, TODAY, 200)


def test_the_default_program_and_whether_a_program_has_cards(services, seed):
    # given two programs of the default store, the second its default, and a card of the first
    now = datetime.now(UTC)
    columns = {
        "name": "Gift card",
        "currency": "USD",
        "code_prefix": "",
        "code_length": 13,
        "code_check_character": False,
        "value_changes_allowed": True,
        "expiry_kind": "NONE",
    }
    with transaction(services) as session:
        first = store.add_program(session, "default", {**columns, "code": "ONE", "is_default": False}, now)
        second = store.add_program(session, "default", {**columns, "code": "TWO", "is_default": True}, now)
    card = seed({})
    with services.engine.begin() as connection:
        connection.execute(update(_cards).where(_cards.c.id == card).values(program_id=first.id))
    # then the default is the second, and only the first has cards
    with transaction(services) as session:
        default = store.default_program(session, "default")
        assert default is not None and default.id == second.id
        assert store.default_program(session, "elsewhere") is None
        assert store.has_cards(session, first.id) and not store.has_cards(session, second.id)
        assert store.find_program(session, first.id, ("elsewhere",)) is None
        found = store.find_program(session, first.id, ("default",))
        assert found is not None and found.code == "ONE" and found.denominations == ()
