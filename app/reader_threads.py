"""Threads for an event loop's blocking database work (resolvers' reads, the money path's
transactions), handed over at little cost.

anyio's ``to_thread.run_sync`` gives each call a capacity token, a cancel scope, an extra turn of the
loop and a worker of its own, woken through a Condition written in Python: for a lookup by code, that
hand-over costs more CPU than the lookup's own Python. Here a call costs a put on one queue shared by
the threads (C code, waking a thread only when one sleeps on it) and a ``call_soon_threadsafe`` back.

A call never waits behind another that is running: it is promised an idle thread, or a new one is
started for it. Only once ``most`` threads are busy do calls wait in the queue, in turn, as anyio's
calls wait for one of its 40 tokens. A thread idle for ``idle_seconds`` ends.

On Linux the threads are batch threads (SCHED_BATCH): a woken one waits for a CPU instead of
preempting the thread that woke it. That is the event loop's, which holds the GIL the woken thread
needs first anyway: preempted, it would keep the GIL while off the CPU, and every thread of the
process would wait (with normal threads, a lookup cost about 10 context switches, as a batch
thread 2 to 3). The share of CPU a thread gets is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")

MOST_THREADS = 40  # as many as anyio's default capacity
IDLE_SECONDS = 10.0  # as long as anyio keeps an idle worker

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]]


class ReaderThreads:
    """Runs blocking calls for event loops (any number of them) in up to ``most`` threads."""

    def __init__(
        self, most: int = MOST_THREADS, idle_seconds: float = IDLE_SECONDS, name: str = "reader"
    ) -> None:
        self._jobs: SimpleQueue[_Job] = SimpleQueue()
        self._mutex = threading.Lock()
        self._most = most
        self._idle_seconds = idle_seconds
        self._name = name
        self._threads = 0  # alive
        self._idle = 0  # waiting for a job that no call was promised
        self._queued = 0  # calls waiting for a thread to finish its job, past ``most``

    @property
    def threads(self) -> int:
        """How many threads are alive."""
        return self._threads

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in one of the threads, in a copy of the caller's context; its result or
        exception. A cancelled caller stops waiting at once; the call still runs to its end."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        with self._mutex:
            if self._idle:
                self._idle -= 1
                start = False
            elif self._threads < self._most:
                self._threads += 1
                start = True
            else:
                self._queued += 1
                start = False
        self._jobs.put((loop, done, contextvars.copy_context(), work))
        if start:
            threading.Thread(target=self._serve, name=self._name, daemon=True).start()
        return await done

    def _serve(self) -> None:
        _run_as_batch()
        while True:
            try:
                loop, done, context, work = self._jobs.get(timeout=self._idle_seconds)
            except Empty:
                with self._mutex:
                    if self._idle:  # no call was promised this thread
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue
            _run(loop, done, context, work)
            del loop, done, context, work  # nothing of the job outlives it
            with self._mutex:
                if self._queued:
                    self._queued -= 1  # this thread takes a waiting call next
                else:
                    self._idle += 1


def _run_as_batch() -> None:
    """This thread under SCHED_BATCH (threads it starts inherit it), where the platform has it."""
    set_scheduler, batch = getattr(os, "sched_setscheduler", None), getattr(os, "SCHED_BATCH", None)
    if set_scheduler is not None and batch is not None:
        with contextlib.suppress(OSError):  # as a normal thread, then
            set_scheduler(0, batch, os.sched_param(0))  # 0: this thread, on Linux


def _run(
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[Any],
    context: contextvars.Context,
    work: Callable[[], Any],
) -> None:
    try:
        result = context.run(work)
    except BaseException as exc:  # handed to the caller, as anyio does
        if isinstance(exc, StopIteration):  # a future cannot hold one
            error = RuntimeError("a call in a reader thread raised StopIteration")
            error.__cause__ = exc
            exc = error
        _report(loop, _fail, done, exc)
    else:
        _report(loop, _succeed, done, result)


def _report(loop: asyncio.AbstractEventLoop, report: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for the answer any more
        loop.call_soon_threadsafe(report, *args)


def _succeed(done: asyncio.Future[Any], result: Any) -> None:
    if not done.cancelled():
        done.set_result(result)


def _fail(done: asyncio.Future[Any], exc: BaseException) -> None:
    if not done.cancelled():
        done.set_exception(exc)
