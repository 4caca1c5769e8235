"""The writers' queue: turns in arrival order, a bounded wait that leaves the queue, one queue a file."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.writer_queue import WriterQueue, queue_for

THREADS = 12


def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Wait for ``condition`` (a thread reaching the queue); a guard against hanging, not a timing."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.001)


def queue_up(queue: WriterQueue, count: int, work: Callable[[int], None]) -> list[threading.Thread]:
    """``count`` threads asking ``queue`` for a turn one after another (each only once the one
    before waits in the queue), each running ``work(its number)`` in its turn."""
    threads = []
    for n in range(count):

        def writer(n: int = n) -> None:
            assert queue.take(wait_seconds=30)
            try:
                work(n)
            finally:
                queue.give_back()

        threads.append(threading.Thread(target=writer, daemon=True))
        threads[-1].start()
        eventually(lambda: queue.waiting() == len(threads))
    return threads


def test_writers_get_their_turns_in_the_order_they_asked():
    # given a writer holding the turn and 12 more asking for it one after another
    queue, served = WriterQueue(), list[int]()
    assert queue.take(wait_seconds=0)
    threads = queue_up(queue, THREADS, served.append)
    assert served == []  # none writes while the turn is held
    # when the holder gives the turn back
    queue.give_back()
    for thread in threads:
        thread.join(timeout=30)
    # then each wrote in its turn, first come first served, and the turn is free again
    assert served == list(range(THREADS))
    assert queue.waiting() == 0
    assert queue.take(wait_seconds=0)


def test_a_writer_whose_wait_runs_out_leaves_the_queue_without_the_turn():
    # given a writer holding the turn
    queue = WriterQueue()
    assert queue.take(wait_seconds=0)
    # when another asks, waiting at most 10 ms
    assert not queue.take(wait_seconds=0.01)
    # then it is no longer waiting, and the turn, given back, is free for the next writer at once
    assert queue.waiting() == 0
    queue.give_back()
    assert queue.take(wait_seconds=0)
    queue.give_back()


def test_a_turn_given_back_skips_a_writer_that_gave_up():
    # given a holder, a writer that gave up waiting, and one that still waits
    queue, served = WriterQueue(), list[int]()
    assert queue.take(wait_seconds=0)
    assert not queue.take(wait_seconds=0.01)
    [thread] = queue_up(queue, 1, served.append)
    # when the holder gives the turn back, the waiting writer has it
    queue.give_back()
    thread.join(timeout=30)
    assert served == [0]
    assert queue.waiting() == 0
    assert queue.take(wait_seconds=0)


def test_a_turn_handed_over_as_the_wait_runs_out_is_kept(monkeypatch):
    # given a writer whose wait runs out just as the turn is handed to it
    queue = WriterQueue()
    assert queue.take(wait_seconds=0)

    def wait_then_hand_over(self: threading.Event, timeout: float | None = None) -> bool:
        queue.give_back()  # the holder, between the wait's end and the writer's look at the queue
        return False

    monkeypatch.setattr(threading.Event, "wait", wait_then_hand_over)
    # then the writer has the turn (taken, so no one else may), rather than dropping it
    assert queue.take(wait_seconds=0.01)
    monkeypatch.undo()
    assert not queue.take(wait_seconds=0)
    queue.give_back()
    assert queue.take(wait_seconds=0)


def test_an_interrupted_wait_leaves_the_queue(monkeypatch):
    queue = WriterQueue()
    assert queue.take(wait_seconds=0)

    def interrupted(self: threading.Event, timeout: float | None = None) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Event, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        queue.take(wait_seconds=1)
    monkeypatch.undo()
    assert queue.waiting() == 0
    queue.give_back()
    assert queue.take(wait_seconds=0)


def test_one_queue_per_database_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = queue_for("giftcards.db")
    assert queue_for(str(tmp_path / "giftcards.db")) is first  # however the file is named
    assert queue_for(str(Path(tmp_path, "other.db"))) is not first
    # an in-memory database is private to its connection: nothing to share
    assert queue_for(":memory:") is not queue_for(":memory:")
    assert queue_for(None) is not queue_for("")
