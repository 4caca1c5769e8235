"""Reader threads: a call's result or exception comes back to its event loop, in the caller's context;
a call never waits behind a running one until ``most`` threads are busy; idle threads end."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
from functools import partial

import pytest

from app.reader_threads import ReaderThreads

REQUEST = contextvars.ContextVar[str]("REQUEST")
SOON = 2.0  # bound on waits that should end at once


def test_a_call_returns_its_result_from_another_thread():
    readers = ReaderThreads()

    async def main() -> tuple[str, int]:
        return await readers.run(lambda: (threading.current_thread().name, 42))

    name, answer = asyncio.run(main())
    assert answer == 42
    assert name == "reader"
    assert name != threading.current_thread().name


def test_a_call_raises_its_exception_in_the_caller():
    readers = ReaderThreads()

    def fail() -> None:
        raise LookupError("not found")

    with pytest.raises(LookupError, match="not found"):
        asyncio.run(readers.run(fail))


def test_a_stop_iteration_comes_back_as_a_runtime_error():
    readers = ReaderThreads()

    def stop() -> None:
        raise StopIteration

    with pytest.raises(RuntimeError) as raised:
        asyncio.run(readers.run(stop))
    assert isinstance(raised.value.__cause__, StopIteration)


def test_a_call_sees_the_callers_context_variables():
    readers = ReaderThreads()

    async def main() -> str:
        REQUEST.set("r-1")
        return await readers.run(REQUEST.get)

    assert asyncio.run(main()) == "r-1"


def test_a_call_never_waits_behind_a_blocked_one():
    # given a call that blocks in its thread until told to go on
    readers = ReaderThreads()
    go_on = threading.Event()

    async def main() -> tuple[float, bool]:
        blocked = asyncio.ensure_future(readers.run(lambda: go_on.wait(SOON * 5)))
        await asyncio.sleep(0.05)
        # when another call comes meanwhile (the blocked thread was the only one)
        started = time.perf_counter()
        await readers.run(lambda: None)
        waited = time.perf_counter() - started
        still_blocked = not blocked.done()
        go_on.set()
        await blocked
        return waited, still_blocked

    waited, still_blocked = asyncio.run(main())
    # then it was answered at once, in a thread of its own, while the first still waited
    assert still_blocked
    assert waited < SOON
    assert readers.threads == 2


def test_calls_past_the_most_threads_wait_their_turn():
    # given the only thread allowed, blocked
    readers = ReaderThreads(most=1)
    go_on = threading.Event()
    order: list[str] = []

    async def main() -> bool:
        blocked = asyncio.ensure_future(readers.run(lambda: go_on.wait(SOON * 5)))
        await asyncio.sleep(0.05)
        # when two more calls come, they wait until it is free, then run in turn
        later = [asyncio.ensure_future(readers.run(partial(order.append, name))) for name in "ab"]
        await asyncio.sleep(0.1)
        waited = not any(call.done() for call in later)
        go_on.set()
        await asyncio.gather(blocked, *later)
        return waited

    assert asyncio.run(main())
    assert order == ["a", "b"]
    assert readers.threads == 1


def test_many_concurrent_calls_all_come_back():
    readers = ReaderThreads(most=4)

    async def main() -> list[int]:
        return await asyncio.gather(*(readers.run(partial(pow, n, 2)) for n in range(200)))

    assert asyncio.run(main()) == [n * n for n in range(200)]
    assert 1 <= readers.threads <= 4


def test_an_idle_thread_ends():
    readers = ReaderThreads(idle_seconds=0.05)

    async def main() -> None:
        await asyncio.gather(*(readers.run(lambda: time.sleep(0.05)) for _ in range(3)))

    asyncio.run(main())
    assert readers.threads == 3
    deadline = time.monotonic() + SOON
    while readers.threads and time.monotonic() < deadline:
        time.sleep(0.02)
    assert readers.threads == 0
    # and a later call starts a thread again
    assert asyncio.run(readers.run(lambda: "again")) == "again"


def test_a_cancelled_caller_stops_waiting_and_the_call_still_ends():
    readers = ReaderThreads()
    go_on, ended = threading.Event(), threading.Event()

    def slow() -> None:
        go_on.wait(SOON * 5)
        ended.set()

    async def main() -> None:
        call = asyncio.ensure_future(readers.run(slow))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        go_on.set()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert ended.wait(SOON)


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="no SCHED_BATCH on this platform")
def test_calls_run_in_batch_threads_and_the_caller_stays_as_it_was():
    readers = ReaderThreads()
    caller = os.sched_getscheduler(0)

    policy = asyncio.run(readers.run(lambda: os.sched_getscheduler(0)))

    assert policy == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == caller


def test_transactions_run_on_threads_apart_from_the_reads(client, services, seed, mint, monkeypatch):
    # given a funded card, and the thread each ledger call and each card lookup runs on recorded
    from app.enums import CodeType
    from tests.conftest import fund, gql

    card_id = seed({CodeType.PHYSICAL: "THREADS00001"})
    fund(services.engine, card_id, 100)
    seen: dict[str, str] = {}
    for target, name in ((type(services.ledger), "create"), (type(services.lookup), "find")):
        called = getattr(target, name)

        def recorded(*args, _called=called, _name=name, **kwargs):
            seen[_name] = threading.current_thread().name
            return _called(*args, **kwargs)

        monkeypatch.setattr(target, name, recorded)
    token = mint(permissions=["GiftCardTransUse", "UsePhysicalGiftCardCodes", "FindGiftCardByCode"])

    # when the card is debited and looked up
    trans = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": "THREADS00001"}
    debit = "mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { balance } }"
    assert gql(client, debit, {"trans": trans}, token) == {"data": {"giftcardTransAdd": {"balance": "0.99"}}}
    lookup = "query L($code: String!) { giftcard(code: $code) { results { balance } } }"
    found = gql(client, lookup, {"code": "THREADS00001"}, token)
    assert found == {"data": {"giftcard": {"results": [{"balance": "0.99"}]}}}

    # then the debit ran on a money thread, the lookup on a reader thread: a hot card's queue of
    # transactions never holds the threads lookups need
    assert seen == {"create": "money", "find": "reader"}
