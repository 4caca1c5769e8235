"""Moving windows in process memory, on a clock the test moves."""

from __future__ import annotations

import pytest
from limits import parse

from app.auth.throttle import LocalCounters, Throttle, parse_limits
from app.errors import ConfigurationError, RateLimitedError


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
