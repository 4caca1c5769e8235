"""Rate limits on attempts that could guess secrets: codes (and PINs) typed by untrusted callers,
and client secrets at the token endpoint.

Limits are written and parsed as the ``limits`` library does (``30/minute;10/10 seconds``) and
counted in moving windows: in Redis with that library when ``GIFTCARDS_REDIS_URL`` is set, so that
every worker and host shares them, else in this process's memory. Each attempt is counted against
every configured limit for every key it carries (token subject and client address); one exhausted
limit refuses the attempt, and the others still count it, so a caller that keeps trying stays
refused.

Attempts that count only when they fail (client secrets) reserve instead: a unit is taken from every
limit before the costly check, all or none in one atomic step, and counts as a failure while in
flight; a success gives it back. However many attempts arrive at once, no more than a limit's amount
run per window. In Redis, reservations live in sorted sets of their own, taken by a small script.

When Redis cannot be reached the attempt is refused (fail closed) and the reason logged.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import redis
from limits import RateLimitItem, WindowStats, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.errors import ConfigurationError, RateLimitedError, UnavailableError

log = logging.getLogger("app.throttle")

RATE_LIMITED_MESSAGE = "too many attempts; try again later"

Window = tuple[RateLimitItem, tuple[str, ...]]  # a limit, and the identifiers it counts for


class Reserved(NamedTuple):
    """What a reservation got: a token naming the unit taken in every window, or None (nothing
    taken) and the seconds until every full window frees a unit."""

    token: str | None
    retry_after: float


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

    def reserve(self, windows: Sequence[Window]) -> Reserved:
        with self._lock:
            now = self._clock()
            found = [(item, self._events(item, ids, now)) for item, ids in windows]
            full = [(item, events) for item, events in found if len(events) >= item.amount]
            if full:
                # A unit frees when the event that keeps the window full ages out.
                return Reserved(None, max(events[len(events) - item.amount] + item.get_expiry() - now
                                          for item, events in full))
            for _, events in found:
                events.append(now)
            self._since_sweep += 1
            if self._since_sweep >= self.SWEEP_EVERY:
                self._sweep(now)
            return Reserved(now.hex(), 0.0)

    def give_back(self, windows: Sequence[Window], token: str) -> None:
        taken = float.fromhex(token)
        with self._lock:
            for item, identifiers in windows:
                window = self._windows.get(item.key_for(*identifiers))
                if window is not None and taken in window[1]:
                    window[1].remove(taken)  # one of equal times: which one does not matter

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        windows = self._windows.items()
        idle = [key for key, (length, events) in windows if not events or events[-1] <= now - length]
        for key in idle:
            del self._windows[key]


# KEYS: one sorted set per window (reservation ids scored by time); ARGV: the id, then the amount
# and length in seconds of each window. Takes a unit in every window or in none; answers 0, or the
# milliseconds until every full window frees one. Redis's own clock, so hosts need not agree.
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local wait = 0
for i, key in ipairs(KEYS) do
  local amount, length = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - length)
  local count = redis.call('ZCARD', key)
  if count >= amount then
    local keeping = redis.call('ZRANGE', key, count - amount, count - amount, 'WITHSCORES')
    wait = math.max(wait, tonumber(keeping[2]) + length - now)
  end
end
if wait > 0 then
  return math.ceil(wait * 1000)
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('EXPIRE', key, ARGV[2 * i + 1])
end
return 0
"""


class RedisCounters(MovingWindowRateLimiter):
    """Moving windows in Redis, shared by every worker and host."""

    def __init__(self, storage: Storage, client: redis.Redis, prefix: str) -> None:
        super().__init__(storage)
        self._client = client
        self._prefix = prefix
        self._reserve = client.register_script(_RESERVE)

    def _key(self, window: Window) -> str:
        # Apart from the library's own keys (lists): a namespace is counted one way or the other.
        item, identifiers = window
        return f"{self._prefix}:reserved/{item.key_for(*identifiers)}"

    def reserve(self, windows: Sequence[Window]) -> Reserved:
        token = uuid.uuid4().hex
        shapes = [str(part) for item, _ in windows for part in (item.amount, item.get_expiry())]
        wait_ms = int(self._reserve(keys=[self._key(window) for window in windows], args=[token, *shapes]))
        return Reserved(None, wait_ms / 1000) if wait_ms else Reserved(token, 0.0)

    def give_back(self, windows: Sequence[Window], token: str) -> None:
        with self._client.pipeline(transaction=False) as pipeline:
            for window in windows:
                pipeline.zrem(self._key(window), token)
            pipeline.execute()

    def reset(self) -> None:
        self.storage.reset()  # every key under the prefix, reservations included


def open_counters(redis_url: str | None, prefix: str = "giftcards") -> LocalCounters | RedisCounters:
    if redis_url is None:
        return LocalCounters()
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("GIFTCARDS_REDIS_URL: expected redis://host:port/db")
    storage = storage_from_string(redis_url, key_prefix=prefix, socket_timeout=2)
    assert isinstance(storage, Storage)  # a sync storage for a redis:// URL
    return RedisCounters(storage, redis.Redis.from_url(redis_url, socket_timeout=2), prefix)


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
        refused_by: list[Window] = []
        try:
            for item, identifiers in self._windows(keys):
                if not self._limiter.hit(item, *identifiers):
                    refused_by.append((item, identifiers))
            if not refused_by:
                return
            retry_after = max(self._seconds_until_free(item, ids) for item, ids in refused_by)
        except Exception:  # the storage (Redis) failed: refuse, never let guesses through unseen
            log.exception("rate limit storage unavailable (%s)", self._namespace)
            raise UnavailableError("attempts cannot be counted right now; try again later") from None
        raise RateLimitedError(RATE_LIMITED_MESSAGE, retry_after=retry_after)

    def reserve(self, keys: Iterable[tuple[str, str | None]]) -> Reservation:
        """Take a unit from every limit of every key before a costly check, or raise
        RateLimitedError, taking none, when one has no unit left.

        Kept, the unit counts as a failed attempt; give it back when the check succeeds. Use this
        namespace with :meth:`reserve` only, not with :meth:`attempt`.
        """
        windows = self._windows(keys)
        try:
            reserved = self._limiter.reserve(windows)
        except Exception:  # as in attempt(): fail closed
            log.exception("rate limit storage unavailable (%s)", self._namespace)
            raise UnavailableError("attempts cannot be counted right now; try again later") from None
        if reserved.token is None:
            raise RateLimitedError(RATE_LIMITED_MESSAGE, retry_after=max(1, math.ceil(reserved.retry_after)))
        return Reservation(self._limiter, windows, reserved.token)

    def reset(self) -> None:
        """Forget every counter (tests only)."""
        self._limiter.reset()

    def _windows(self, keys: Iterable[tuple[str, str | None]]) -> list[Window]:
        return [(item, (self._namespace, kind, value))
                for kind, value in keys if value is not None for item in self._limits]

    def _seconds_until_free(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> int:
        stats = self._limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))


class Reservation:
    """A unit taken by :meth:`Throttle.reserve`; kept, it is a failed attempt in every window."""

    def __init__(
        self, counters: LocalCounters | RedisCounters, windows: Sequence[Window], token: str
    ) -> None:
        self._counters = counters
        self._windows = tuple(windows)
        self._token: str | None = token

    def give_back(self) -> None:
        """Return the unit (a success, or nothing was tried); once only, later calls do nothing.

        When Redis fails here the unit stays spent, as a failure would: logged, not raised.
        """
        token, self._token = self._token, None
        if token is None:
            return
        try:
            self._counters.give_back(self._windows, token)
        except Exception:
            log.exception("an attempt's unit could not be given back; it counts as a failure")
