"""Moving windows in process memory, on a clock the test moves; reservations there and in Redis;
the fallback to process memory while Redis is unreachable."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import redis

from app.auth.counters import LocalCounters, RedisCounters, SharedCounters, Window, open_counters
from app.auth.throttle import Throttle, parse_limits
from app.errors import ConfigurationError, RateLimitedError

T = TypeVar("T")
REDIS = "redis://127.0.0.1:6379/0"


def _windows(text: str, *keys: str) -> list[Window]:
    return [(item, ("ns", "k", key)) for key in keys for item in parse_limits(text, "X")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_refuses_at_its_amount_and_frees_as_units_age():
    clock = Clock()
    counters, windows = LocalCounters(clock), _windows("3/10 seconds", "k")
    assert [counters.reserve(windows).token is not None for _ in range(4)] == [True, True, True, False]
    clock.now += 9.9
    assert counters.reserve(windows).token is None
    clock.now += 0.2  # the first three are now older than the window
    assert counters.reserve(windows).token is not None
    assert counters.remaining(windows[0]) == 2


def test_keys_and_limits_count_apart():
    counters = LocalCounters(Clock())
    minute_a, minute_b = _windows("2/minute", "a"), _windows("2/minute", "b")
    assert [counters.reserve(minute_a).token is not None for _ in range(3)] == [True, True, False]
    assert counters.reserve(minute_b).token is not None
    assert counters.reserve(_windows("1/second", "a")).token is not None


def test_idle_keys_are_swept():
    clock = Clock()
    counters = LocalCounters(clock)
    for n in range(LocalCounters.SWEEP_EVERY - 1):
        counters.reserve(_windows("5/second", f"k{n}"))
    clock.now += 2
    fresh = _windows("5/second", "fresh")
    counters.reserve(fresh)  # the sweep runs on this reservation
    assert list(counters._windows) == [fresh[0][0].key_for(*fresh[0][1])]


@pytest.mark.parametrize("text", ["", "lots", "30/fortnight", "-1/minute"])
def test_bad_limits_name_the_setting(text):
    with pytest.raises(ConfigurationError, match="GIFTCARDS_SETTING"):
        parse_limits(text, "GIFTCARDS_SETTING")


# --- reservations: taken before a costly check, given back by a success -------------------------


def test_a_reservation_counts_until_given_back():
    clock = Clock()
    counters, windows = LocalCounters(clock), _windows("3/10 seconds", "a")
    taken = [counters.reserve(windows) for _ in range(3)]
    assert all(reserved.token for reserved in taken)
    # in flight, three reservations fill the window as three failures would
    refused = counters.reserve(windows)
    assert refused.token is None and refused.retry_after == 10
    # a success gives its unit back; a failure keeps it until it ages out
    token = taken[1].token
    assert token is not None
    counters.give_back(windows, token)
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
    assert counters.remaining(_windows("2/minute", "subject")[0]) == 2


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
    counters = RedisCounters(redis.Redis.from_url(REDIS), f"t{uuid.uuid4().hex}")
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


def test_reset_forgets_only_its_own_prefix(redis_counters):
    other = RedisCounters(redis.Redis.from_url(REDIS), f"t{uuid.uuid4().hex}")
    try:
        for counters in (redis_counters, other):
            counters.reserve(_windows("1/minute", "a"))
        redis_counters.reset()
        assert redis_counters.reserve(_windows("1/minute", "a")).token is not None
        assert other.reserve(_windows("1/minute", "a")).token is None
    finally:
        other.reset()


# --- while Redis is unreachable: per process, each amount divided by the workers ------------------


class FlakyRedis:
    """Stands in for RedisCounters: local windows of its own, or ConnectionError while ``down``."""

    def __init__(self) -> None:
        self.down, self.counters, self.asked = False, LocalCounters(Clock()), 0
        self.given_back: list[str] = []

    def _answer(self) -> None:
        self.asked += 1
        if self.down:
            raise redis.ConnectionError("Connection refused")

    def ping(self) -> None:
        self._answer()

    def reserve(self, windows):
        self._answer()
        return self.counters.reserve(windows)

    def give_back(self, windows, token):
        self._answer()
        self.given_back.append(token)
        self.counters.give_back(windows, token)

    def reset(self) -> None:
        self.counters.reset()


def test_without_redis_each_worker_counts_alone_with_its_share(caplog):
    clock, shared = Clock(), FlakyRedis()
    counters = SharedCounters(shared, workers=3, clock=clock)
    windows = _windows("10/minute", "a")
    assert counters.reserve(windows).token is not None and not counters.degraded

    shared.down = True
    taken = [counters.reserve(windows) for _ in range(4)]
    # 10 // 3 = 3 units in this process: the workers together admit about what Redis would
    assert [reserved.token is not None for reserved in taken] == [True, True, True, False]
    assert counters.degraded
    assert [record.getMessage() for record in caplog.records if record.name == "app.throttle"] == [
        "Redis unreachable (ConnectionError): attempt budgets are counted per process, each divided "
        "by 3 worker(s), until it answers again"
    ]
    # a local unit is given back locally, without asking Redis
    counters.give_back(windows, taken[0].token)
    assert counters.reserve(windows).token is not None and shared.given_back == []


def test_redis_is_tried_again_after_a_pause_and_units_go_back_where_they_came_from(caplog):
    clock, shared = Clock(), FlakyRedis()
    counters = SharedCounters(shared, workers=2, clock=clock)
    windows = _windows("4/minute", "a")
    shared.down = True
    local = counters.reserve(windows)
    shared.down = False
    # within the pause the process keeps counting alone: 2 units, one already taken
    clock.now += SharedCounters.RETRY_SECONDS - 0.1
    assert counters.reserve(windows).token is not None and counters.reserve(windows).token is None
    assert counters.degraded
    clock.now += 0.2
    remote = counters.reserve(windows)
    assert remote.token is not None and not counters.degraded
    assert "Redis answers again: attempt budgets are shared again" in caplog.text
    counters.give_back(windows, remote.token)
    counters.give_back(windows, local.token)
    assert len(shared.given_back) == 1 and shared.counters.remaining(windows[0]) == 4


def test_after_the_pause_one_caller_tries_redis_while_the_others_count_locally():
    clock, shared = Clock(), FlakyRedis()
    counters = SharedCounters(shared, workers=1, clock=clock)
    windows = _windows("100/minute", "a")
    shared.down = True
    counters.reserve(windows)
    assert shared.asked == 1
    for _ in range(5):  # within the pause: Redis is not asked
        counters.reserve(windows)
    assert shared.asked == 1
    clock.now += SharedCounters.RETRY_SECONDS
    for _ in range(5):  # the first caller probes (and fails), starting a new pause for the rest
        assert counters.reserve(windows).token is not None
    assert shared.asked == 2 and counters.degraded


def test_redis_is_given_half_a_second_at_most():
    counters = open_counters(REDIS, workers=1)
    assert isinstance(counters, SharedCounters)
    redis: Any = counters._shared
    options = redis._client.connection_pool.connection_kwargs
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (0.5, 0.5)


def test_readiness_check_switches_over_both_ways():
    shared = FlakyRedis()
    counters = SharedCounters(shared, workers=1, clock=Clock())
    shared.down = True
    assert counters.check() is False and counters.degraded
    shared.down = False
    assert counters.check() is True and not counters.degraded


def test_an_unreachable_redis_falls_back_instead_of_refusing():
    counters = open_counters("redis://127.0.0.1:1/0", workers=2)
    throttle = Throttle(counters, "client-secret", parse_limits("4/minute", "X"))
    throttle.reserve([("client", "pos-1")])
    throttle.reserve([("client", "pos-1")])
    with pytest.raises(RateLimitedError):  # 4 // 2 workers
        throttle.reserve([("client", "pos-1")])
    assert isinstance(counters, SharedCounters) and counters.degraded


def _at_once(count: int, work: Callable[[], T]) -> list[T]:
    start = threading.Barrier(count, timeout=30)

    def released(_: int) -> T:
        start.wait()
        return work()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(released, range(count)))
