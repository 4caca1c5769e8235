"""A code attempt's unit: reserved before the code is looked at, counted while in flight, given back
by a hit or by a failure that tells nothing, kept by a miss."""

from __future__ import annotations

import pytest

from app.auth.counters import LocalCounters
from app.auth.throttle import Throttle, parse_limits
from app.domain.attempts import code_attempt
from app.errors import (
    BadUserInputError,
    CardNotUsableError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
)
from app.policy import Budget, Principal

KIOSK = Principal("kiosk", frozenset({"FindGiftCardByCode"}), address="192.0.2.1")
OFFICE = Principal("office", frozenset({"FindGiftCardByCode", "ListGiftCards"}), address="192.0.2.1")


@pytest.fixture
def throttle() -> Throttle:
    return Throttle(LocalCounters(), "code", parse_limits("2/minute", "X"))


def _room(throttle: Throttle, principal: Principal = KIOSK) -> int:
    """How many more attempts the principal may start now (taking and keeping them)."""
    started = 0
    try:
        while started < 10:
            with code_attempt(throttle, principal):
                started += 1
    except RateLimitedError:
        pass
    return started


def test_attempts_in_flight_count_against_the_budget(throttle):
    with code_attempt(throttle, KIOSK) as first, code_attempt(throttle, KIOSK) as second:
        with pytest.raises(RateLimitedError), code_attempt(throttle, KIOSK):
            pass
        first.hit()
        second.hit()
        # resolved, but still running: their units come back when they end
        with pytest.raises(RateLimitedError), code_attempt(throttle, KIOSK):
            pass
    assert _room(throttle) == 2


def test_a_refusal_after_the_code_resolved_gives_the_unit_back(throttle):
    # e.g. funds too short, shown to a caller that may not look codes up as the uniform refusal
    with pytest.raises(CardNotUsableError), code_attempt(throttle, KIOSK) as attempt:
        attempt.hit()
        raise CardNotUsableError("no")
    assert _room(throttle) == 2


def test_a_hit_gives_its_unit_back_once(throttle):
    with code_attempt(throttle, KIOSK) as attempt:
        attempt.hit()
        attempt.hit()  # a second hit frees nothing more
    assert _room(throttle) == 2


@pytest.mark.parametrize("miss", [CardNotUsableError("no"), NotFoundError("no")], ids=type)
def test_a_miss_keeps_its_unit(throttle, miss):
    with pytest.raises(type(miss)), code_attempt(throttle, KIOSK):
        raise miss
    assert _room(throttle) == 1


def test_an_attempt_that_ends_without_a_hit_keeps_its_unit(throttle):
    with code_attempt(throttle, KIOSK):
        pass  # found nothing
    assert _room(throttle) == 1


@pytest.mark.parametrize(
    "failure", [BadUserInputError("x"), UnavailableError("x"), RuntimeError("x")], ids=type
)
def test_a_failure_that_tells_nothing_gives_its_unit_back(throttle, failure):
    with pytest.raises(type(failure)), code_attempt(throttle, KIOSK):
        raise failure
    assert _room(throttle) == 2


def test_a_caller_that_lists_cards_reserves_nothing(throttle):
    for _ in range(5):
        with code_attempt(throttle, OFFICE):
            pass
    assert _room(throttle) == 2


def test_subject_and_address_each_have_their_budget(throttle):
    budget = Budget(per_subject=parse_limits("3/minute", "X"), per_address=parse_limits("1/minute", "X"))
    shop = Principal("shop", frozenset({"FindGiftCardByCode"}), address="192.0.2.7", budget=budget)
    assert _room(throttle, shop) == 1  # the address's one unit
    elsewhere = Principal("shop", shop.permissions, address="192.0.2.8", budget=budget)
    assert _room(throttle, elsewhere) == 1
    assert _room(throttle, Principal("shop", shop.permissions, address="192.0.2.9", budget=budget)) == 1
    # the subject's three are spent now, whatever the address
    assert _room(throttle, Principal("shop", shop.permissions, address="192.0.2.10", budget=budget)) == 0
    # a principal without a budget of its own has the throttle's: 2 per subject and per address
    assert _room(throttle, Principal("other", shop.permissions, address="192.0.2.11")) == 2


def test_each_store_has_its_own_budget(throttle):
    # a subject and address that spent the budget of one store still has another's
    assert _room(throttle) == 2
    assert _room(throttle) == 0
    north = Principal("kiosk", KIOSK.permissions, address="192.0.2.1", stores=frozenset({"north"}))
    assert _room(throttle, north) == 2
    # a search of several stores spends each one's budget: none left when one of them has none
    south = Principal("kiosk", KIOSK.permissions, address="192.0.2.1", stores=frozenset({"south"}))
    assert _room(throttle, south) == 2
    both = Principal("kiosk", KIOSK.permissions, address="192.0.2.1", stores=frozenset({"east", "default"}))
    assert _room(throttle, both) == 0
    east = Principal("kiosk", KIOSK.permissions, address="192.0.2.1", stores=frozenset({"east"}))
    assert _room(throttle, east) == 2
    # so naming one store of several opens no fresh budget
    west_and_up = Principal("kiosk", KIOSK.permissions, address="192.0.2.1", stores=frozenset({"west", "up"}))
    assert _room(throttle, west_and_up) == 2
    west = Principal("kiosk", KIOSK.permissions, address="192.0.2.1", stores=frozenset({"west"}))
    assert _room(throttle, west) == 0
