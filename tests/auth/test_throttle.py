"""Moving windows in process memory, on a clock the test moves; reservations there and in Redis."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from limits import parse

from app.auth.throttle import LocalCounters, RedisCounters, Throttle, Window, open_counters, parse_limits
from app.errors import ConfigurationError, RateLimitedError, UnavailableError

T = TypeVar("T")
REDIS = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_refuses_at_its_amount_and_frees_as_attempts_age():
    clock = Clock()
    counters, item = LocalCounters(clock), parse("3/10 seconds")
    assert [counters.hit(item, "k") for _ in range(4)] == [True, True, True, False]
    clock.now += 9.9
    assert not counters.test(item, "k")
    clock.now += 0.2  # the first three are now older than the window
    assert counters.test(item, "k") and counters.hit(item, "k")
    assert counters.get_window_stats(item, "k").remaining == 2


def test_keys_and_limits_count_apart():
    counters = LocalCounters(Clock())
    minute, burst = parse("2/minute"), parse("1/second")
    assert counters.hit(minute, "a") and counters.hit(minute, "a") and not counters.hit(minute, "a")
    assert counters.hit(minute, "b") and counters.hit(burst, "a")


def test_idle_keys_are_swept():
    clock = Clock()
    counters, item = LocalCounters(clock), parse("5/second")
    for n in range(LocalCounters.SWEEP_EVERY - 1):
        counters.hit(item, f"k{n}")
    clock.now += 2
    counters.hit(item, "fresh")  # the sweep runs on this attempt
    assert list(counters._windows) == [item.key_for("fresh")]


def test_the_throttle_names_when_to_retry():
    clock = Clock()
    throttle = Throttle(LocalCounters(clock), "code", parse_limits("2/minute", "X"))
    throttle.attempt([("subject", "s")])
    clock.now += 15
    throttle.attempt([("subject", "s")])
    with pytest.raises(RateLimitedError) as refused:
        throttle.attempt([("subject", "s"), ("address", None)])
    assert 44 <= refused.value.retry_after <= 46


@pytest.mark.parametrize("text", ["", "lots", "30/fortnight", "-1/minute"])
def test_bad_limits_name_the_setting(text):
    with pytest.raises(ConfigurationError, match="GIFTCARDS_SETTING"):
        parse_limits(text, "GIFTCARDS_SETTING")


# --- reservations: taken before a costly check, given back by a success -------------------------


def _windows(text: str, *keys: str) -> list[Window]:
    return [(item, ("ns", "k", key)) for key in keys for item in parse_limits(text, "X")]


def test_a_reservation_counts_until_given_back():
    clock = Clock()
    counters, windows = LocalCounters(clock), _windows("3/10 seconds", "a")
    taken = [counters.reserve(windows) for _ in range(3)]
    assert all(reserved.token for reserved in taken)
    # in flight, three reservations fill the window as three failures would
    refused = counters.reserve(windows)
    assert refused.token is None and refused.retry_after == 10
    # a success gives its unit back; a failure keeps it until it ages out
    counters.give_back(windows, taken[1].token)
    clock.now += 4
    assert counters.reserve(windows).token is not None
    refused = counters.reserve(windows)
    assert refused.token is None and refused.retry_after == pytest.approx(6)


def test_a_reservation_takes_every_window_or_none():
    counters = LocalCounters(Clock())
    both = _windows("2/minute", "subject", "address")
    counters.reserve(_windows("2/minute", "address"))
    counters.reserve(_windows("2/minute", "address"))
    assert counters.reserve(both).token is None
    # the refused reservation took nothing from the window that had room
    assert counters.get_window_stats(*_windows("2/minute", "subject")[0]).remaining == 2


def test_the_throttle_reserves_and_names_when_to_retry():
    clock = Clock()
    throttle = Throttle(LocalCounters(clock), "client-secret", parse_limits("2/minute", "X"))
    keys = [("client", "pos-1"), ("address", None)]
    throttle.reserve(keys)  # kept: a failure
    throttle.reserve(keys).give_back()  # a success
    clock.now += 15
    throttle.reserve(keys)
    with pytest.raises(RateLimitedError) as refused:
        throttle.reserve(keys)
    assert refused.value.retry_after == 45


def test_concurrent_reservations_never_exceed_the_amount():
    counters = LocalCounters()
    windows = _windows("10/minute", "a")
    taken = _at_once(40, lambda: counters.reserve(windows).token)
    assert sum(token is not None for token in taken) == 10


# --- the same against the real Redis ---------------------------------------------------------------


@pytest.fixture
def redis_counters() -> Iterator[RedisCounters]:
    counters = open_counters(REDIS, f"t{uuid.uuid4().hex}")
    assert isinstance(counters, RedisCounters)
    yield counters
    counters.reset()


def test_redis_reservations_count_until_given_back(redis_counters):
    windows = _windows("3/10 seconds", "a")
    taken = [redis_counters.reserve(windows) for _ in range(3)]
    assert all(reserved.token for reserved in taken)
    refused = redis_counters.reserve(windows)
    assert refused.token is None and 9 < refused.retry_after <= 10
    redis_counters.give_back(windows, taken[0].token)
    assert redis_counters.reserve(windows).token is not None
    assert redis_counters.reserve(windows).token is None


def test_redis_reservations_take_every_window_or_none(redis_counters):
    for _ in range(2):
        redis_counters.reserve(_windows("2/minute", "address"))
    assert redis_counters.reserve(_windows("2/minute", "subject", "address")).token is None
    assert redis_counters.reserve(_windows("2/minute;1/10 seconds", "subject")).token is not None
    assert redis_counters.reserve(_windows("2/minute;1/10 seconds", "subject")).token is None
    # the 2/minute window of that key still has room: the refusal took nothing there
    assert redis_counters.reserve(_windows("2/minute", "subject")).token is not None


def test_concurrent_redis_reservations_never_exceed_the_amount(redis_counters):
    windows = _windows("10/minute", "a")
    taken = _at_once(40, lambda: redis_counters.reserve(windows).token)
    assert sum(token is not None for token in taken) == 10


def test_an_unreachable_redis_refuses_reservations():
    limits = parse_limits("2/minute", "X")
    throttle = Throttle(open_counters("redis://127.0.0.1:1/0"), "client-secret", limits)
    with pytest.raises(UnavailableError):
        throttle.reserve([("client", "pos-1")])


def _at_once(count: int, work: Callable[[], T]) -> list[T]:
    start = threading.Barrier(count, timeout=30)

    def released(_: int) -> T:
        start.wait()
        return work()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(released, range(count)))
