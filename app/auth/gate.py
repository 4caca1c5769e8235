"""A per-process bound on concurrent slow verifications (argon2: ~64 MiB and a core for ~0.1 s each).

Beyond the bound a caller is turned away at once with :class:`BusyError` rather than queued, so a
burst of anonymous guesses can take neither every core nor the memory. Call it from worker threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from app.errors import BusyError

P = ParamSpec("P")
T = TypeVar("T")

BUSY_MESSAGE = "too many verifications at once; try again shortly"


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class VerificationGate:
    """At most ``slots`` verifications at once. A caller waits at most ``wait_seconds`` for a slot:
    long enough to ride out a verification about to end, short enough that waits cannot pile up."""

    def __init__(self, slots: int | None = None, *, wait_seconds: float = 0.05, retry_after: int = 1) -> None:
        self.slots = slots if slots is not None else usable_cores()
        if self.slots < 1:
            raise ValueError("a gate needs at least one slot")
        self._free = threading.BoundedSemaphore(self.slots)
        self._wait_seconds = wait_seconds
        self._retry_after = retry_after

    @contextmanager
    def admit(self, wait_seconds: float | None = None) -> Iterator[None]:
        """Hold a slot for the ``with`` body, or raise BusyError without running it. ``wait_seconds``
        overrides the gate's wait, for a caller holding no lock that would rather queue than be refused."""
        wait = self._wait_seconds if wait_seconds is None else wait_seconds
        if not self._free.acquire(timeout=wait):
            raise BusyError(BUSY_MESSAGE, retry_after=self._retry_after)
        try:
            yield
        finally:
            self._free.release()

    def run(self, verify: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``verify(*args, **kwargs)`` in a slot; BusyError, without calling it, when none is free."""
        with self.admit():
            return verify(*args, **kwargs)
