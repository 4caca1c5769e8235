"""Rate limits on attempts that could guess secrets: codes (and PINs) typed by untrusted callers,
and client secrets at the token endpoint.

Limits are written and parsed as the ``limits`` library does (``30/minute;10/10 seconds``) and
counted in moving windows: in Redis with that library when ``GIFTCARDS_REDIS_URL`` is set, so that
every worker and host shares them, else in this process's memory. Each attempt is counted against
every configured limit for every key it carries (token subject and client address); one exhausted
limit refuses the attempt, and the others still count it, so a caller that keeps trying stays
refused.

When Redis cannot be reached the attempt is refused (fail closed) and the reason logged.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from limits import RateLimitItem, WindowStats, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.errors import ConfigurationError, RateLimitedError, UnavailableError

log = logging.getLogger("app.throttle")

RATE_LIMITED_MESSAGE = "too many attempts; try again later"


def parse_limits(text: str, setting: str) -> tuple[RateLimitItem, ...]:
    """``"30/minute;10/10 seconds"`` → limit items; a configuration error names the setting."""
    try:
        items = tuple(parse_many(text))
    except ValueError:
        items = ()
    if not items:
        raise ConfigurationError(
            f"{setting}: expected limits such as '30/minute' or '30/minute;10/10 seconds'"
        )
    return items


class LocalCounters:
    """Moving windows in this process's memory: per key, the times of its attempts, oldest first.

    The ``limits`` library's memory storage expires entries from a timer thread that it starts
    again every 10 ms under load; that churn cost about 0.15 ms per lookup in the lookup
    benchmark. Here a window is trimmed when it is used, and idle keys are swept every
    ``SWEEP_EVERY`` attempts, so memory stays bounded without a thread.
    """

    SWEEP_EVERY = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, deque[float]]] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0

    def _events(self, item: RateLimitItem, identifiers: tuple[str, ...], now: float) -> deque[float]:
        key, length = item.key_for(*identifiers), float(item.get_expiry())
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = (length, deque())
        events = window[1]
        while events and events[0] <= now - length:
            events.popleft()
        return events

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        with self._lock:
            now = self._clock()
            events = self._events(item, identifiers, now)
            if len(events) >= item.amount:
                return False
            events.append(now)
            self._since_sweep += 1
            if self._since_sweep >= self.SWEEP_EVERY:
                self._sweep(now)
            return True

    def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        with self._lock:
            return len(self._events(item, identifiers, self._clock())) < item.amount

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        with self._lock:
            now = self._clock()
            events = self._events(item, identifiers, now)
            frees_in = events[0] + item.get_expiry() - now if events else 0.0
            return WindowStats(time.time() + frees_in, max(0, item.amount - len(events)))

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        windows = self._windows.items()
        idle = [key for key, (length, events) in windows if not events or events[-1] <= now - length]
        for key in idle:
            del self._windows[key]


class RedisCounters(MovingWindowRateLimiter):
    """Moving windows in Redis, shared by every worker and host."""

    def reset(self) -> None:
        self.storage.reset()


def open_counters(redis_url: str | None, prefix: str = "giftcards") -> LocalCounters | RedisCounters:
    if redis_url is None:
        return LocalCounters()
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("GIFTCARDS_REDIS_URL: expected redis://host:port/db")
    storage = storage_from_string(redis_url, key_prefix=prefix, socket_timeout=2)
    assert isinstance(storage, Storage)  # a sync storage for a redis:// URL
    return RedisCounters(storage)


class Throttle:
    """Counts attempts in one namespace (``code``, ``client-secret`` …) against its limits."""

    def __init__(
        self, counters: LocalCounters | RedisCounters, namespace: str, limits: Sequence[RateLimitItem]
    ) -> None:
        self._limiter = counters
        self._namespace = namespace
        self._limits = tuple(limits)

    def attempt(self, keys: Iterable[tuple[str, str | None]]) -> None:
        """Count one attempt for each ``(kind, value)`` key; raise RateLimitedError when over.

        Keys whose value is None (an unknown client address) are skipped.
        """
        self._enforce(keys, count=True)

    def check(self, keys: Iterable[tuple[str, str | None]]) -> None:
        """Raise RateLimitedError when a key has no attempt left, counting nothing.

        For attempts that count only when they fail (client secrets): check before the costly
        verification and :meth:`attempt` after a failure, so that a right guess is refused too
        while its keys are over their limits.
        """
        self._enforce(keys, count=False)

    def _enforce(self, keys: Iterable[tuple[str, str | None]], *, count: bool) -> None:
        allowed = self._limiter.hit if count else self._limiter.test
        refused_by: list[tuple[RateLimitItem, tuple[str, ...]]] = []
        try:
            for kind, value in keys:
                if value is None:
                    continue
                identifiers = (self._namespace, kind, value)
                for item in self._limits:
                    if not allowed(item, *identifiers):
                        refused_by.append((item, identifiers))
            if not refused_by:
                return
            retry_after = max(self._seconds_until_free(item, ids) for item, ids in refused_by)
        except Exception:  # the storage (Redis) failed: refuse, never let guesses through unseen
            log.exception("rate limit storage unavailable (%s)", self._namespace)
            raise UnavailableError("attempts cannot be counted right now; try again later") from None
        raise RateLimitedError(RATE_LIMITED_MESSAGE, retry_after=retry_after)

    def reset(self) -> None:
        """Forget every counter (tests only)."""
        self._limiter.reset()

    def _seconds_until_free(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> int:
        stats = self._limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))
