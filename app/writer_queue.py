"""A first-come, first-served turn to write: the one writer of an SQLite file in this process.

SQLite lets one transaction write at a time and makes the others poll its lock (sleeping longer
between tries the longer they wait), so under load the latest arrival may win and the tail grows
to seconds. Writers that queue here instead are served in arrival order, each woken by the one
before it. A turn is not owned by a thread: the one that commits gives it back.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque


class WriterQueue:
    """A FIFO lock with a bounded wait: :meth:`take` returns whether the turn came in time."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._taken = False
        self._waiting: deque[threading.Event] = deque()

    def take(self, wait_seconds: float) -> bool:
        """The turn, once every writer that asked before has had its own; False, without it, if
        it does not come within ``wait_seconds``."""
        with self._mutex:
            if not self._taken:
                self._taken = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        try:
            came = turn.wait(wait_seconds)
        except BaseException:
            if self._leave(turn):
                self.give_back()
            raise
        return came or self._leave(turn)

    def _leave(self, turn: threading.Event) -> bool:
        """Out of the queue, the wait over: True if the turn was handed over meanwhile (and so
        is the caller's)."""
        with self._mutex:
            if turn.is_set():
                return True
            self._waiting.remove(turn)
            return False

    def give_back(self) -> None:
        """Hand the turn to the longest waiting writer, or free it."""
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()  # still taken, now by that writer
            else:
                self._taken = False

    def waiting(self) -> int:
        """How many writers wait for their turn."""
        with self._mutex:
            return len(self._waiting)


# One queue per database file, shared by every engine of this process that writes to it.
_QUEUES: weakref.WeakValueDictionary[str, WriterQueue] = weakref.WeakValueDictionary()
_QUEUES_MUTEX = threading.Lock()


def queue_for(database: str | None) -> WriterQueue:
    """The queue of the SQLite file ``database``; a private one for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return WriterQueue()
    path = os.path.realpath(database)
    with _QUEUES_MUTEX:
        queue = _QUEUES.get(path)
        if queue is None:
            queue = _QUEUES[path] = WriterQueue()
        return queue
