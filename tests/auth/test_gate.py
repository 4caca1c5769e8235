"""The per-process bound on slow verifications: a few at once, the rest turned away at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.auth.gate import VerificationGate, usable_cores
from app.errors import BusyError, ErrorCode


def test_the_default_size_is_the_usable_cores():
    assert VerificationGate().slots == usable_cores() >= 1
    with pytest.raises(ValueError):
        VerificationGate(0)


def test_beyond_its_slots_callers_are_turned_away_without_running():
    # given a gate of two slots, both held by verifications in progress
    gate = VerificationGate(2, wait_seconds=0.01, retry_after=3)
    release, inside = threading.Event(), threading.Barrier(3, timeout=10)

    def held() -> str:
        inside.wait()
        release.wait(10)
        return "verified"

    ran: list[str] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.submit(gate.run, held), pool.submit(gate.run, held)
        inside.wait()
        # when a third arrives, it is refused at once, and its check never runs
        with pytest.raises(BusyError) as busy:
            gate.run(ran.append, "third")
        release.set()
        assert (first.result(), second.result()) == ("verified", "verified")
    assert ran == []
    assert busy.value.retry_after == 3
    assert busy.value.extensions == {"code": ErrorCode.UNAVAILABLE.value, "retryAfter": 3}
    # then, the slots free again, it runs
    assert gate.run(lambda value: value * 2, 21) == 42


def test_a_slot_is_freed_when_the_check_raises():
    gate = VerificationGate(1, wait_seconds=0)

    def broken() -> None:
        raise RuntimeError("argon2 failed")

    with pytest.raises(RuntimeError):
        gate.run(broken)
    with gate.admit():
        pass


def test_a_caller_waits_briefly_for_a_slot_about_to_free():
    gate = VerificationGate(1, wait_seconds=2)
    with ThreadPoolExecutor(max_workers=1) as pool:
        holding = pool.submit(gate.run, time.sleep, 0.05)
        time.sleep(0.01)
        assert gate.run(lambda: "after the wait") == "after the wait"
        holding.result()


def test_concurrency_never_exceeds_the_slots():
    gate = VerificationGate(3, wait_seconds=0)
    lock, running, most, busy = threading.Lock(), [0], [0], [0]
    start = threading.Barrier(12, timeout=10)

    def verify() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1

    def attempt(_: int) -> None:
        start.wait()
        try:
            gate.run(verify)
        except BusyError:
            with lock:
                busy[0] += 1

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(attempt, range(12)))
    assert 1 <= most[0] <= 3
    assert busy[0] >= 1  # twelve released together, each holding its slot for 0.2 s
