"""Where attempt units are counted, in moving windows: this process's memory, or Redis
(``GIFTCARDS_REDIS_URL``) so that every worker and host shares them; there a small script takes
the units. While Redis cannot be reached, each process counts alone with every amount divided by
the number of workers (``GIFTCARDS_WORKERS``), tries Redis again every few seconds, and logs both
changes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import redis
from limits import RateLimitItem

from app.errors import ConfigurationError

log = logging.getLogger("app.throttle")

Window = tuple[RateLimitItem, tuple[str, ...]]  # a limit, and the identifiers it counts for


class Reserved(NamedTuple):
    """What a reservation got: a token naming the unit taken in every window, or None (nothing
    taken) and the seconds until every full window frees a unit."""

    token: str | None
    retry_after: float


class Counters(Protocol):
    def reserve(self, windows: Sequence[Window]) -> Reserved: ...
    def give_back(self, windows: Sequence[Window], token: str) -> None: ...
    def reset(self) -> None: ...


class RemoteCounters(Counters, Protocol):
    """Counters in another process (Redis), which may be unreachable."""

    def ping(self) -> None: ...


class LocalCounters:
    """Moving windows in this process's memory: per key, the times of its units, oldest first. A
    window is trimmed when used and idle keys are swept every ``SWEEP_EVERY`` reservations: memory
    stays bounded without a timer thread (the ``limits`` library's memory storage restarts one every
    10 ms under load, which cost about 0.15 ms per lookup)."""

    SWEEP_EVERY = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, deque[float]]] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0

    def _events(self, item: RateLimitItem, identifiers: tuple[str, ...], now: float) -> deque[float]:
        length = float(item.get_expiry())
        _, events = self._windows.setdefault(item.key_for(*identifiers), (length, deque()))
        while events and events[0] <= now - length:
            events.popleft()
        return events

    def reserve(self, windows: Sequence[Window]) -> Reserved:
        with self._lock:
            now = self._clock()
            found = [(item, self._events(item, ids, now)) for item, ids in windows]
            full = [(item, events) for item, events in found if len(events) >= item.amount]
            if full:
                # A unit frees when the event that keeps the window full ages out.
                wait = max(
                    events[len(events) - item.amount] + item.get_expiry() - now for item, events in full
                )
                return Reserved(None, wait)
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

    def remaining(self, window: Window) -> int:
        """Units left in one window."""
        item, identifiers = window
        with self._lock:
            return max(0, item.amount - len(self._events(item, identifiers, self._clock())))

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        for key, (length, events) in list(self._windows.items()):
            if not events or events[-1] <= now - length:
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


class RedisCounters:
    """Moving windows in Redis, shared by every worker and host."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._reserve = client.register_script(_RESERVE)

    def _key(self, window: Window) -> str:
        item, identifiers = window
        return f"{self._prefix}:reserved/{item.key_for(*identifiers)}"

    def ping(self) -> None:
        self._client.ping()

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
        """Forget every window under the prefix (tests only)."""
        keys = list(self._client.scan_iter(match=f"{self._prefix}:reserved/*", count=1000))
        if keys:
            self._client.delete(*keys)


class SharedCounters:
    """Redis while it answers; else :class:`LocalCounters` with every amount divided by the number of
    workers (so a host's workers together admit about what Redis would), Redis being tried again
    ``RETRY_SECONDS`` after a failure. Each unit is given back where it was taken."""

    RETRY_SECONDS = 5.0

    def __init__(
        self, shared: RemoteCounters, workers: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._shared = shared
        self._local = LocalCounters(clock)
        self._workers = max(1, workers)
        self._clock = clock
        self._retry_at: float | None = None  # set while Redis is unreachable
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while units are counted per process because Redis could not be reached."""
        return self._retry_at is not None

    def check(self) -> bool:
        """Whether Redis answers now (for ``/readyz``); a failure or a recovery switches over."""
        try:
            self._shared.ping()
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return False
        self._recovered()
        return True

    def reserve(self, windows: Sequence[Window]) -> Reserved:
        if self._retry_at is None or self._probe():
            try:
                reserved = self._shared.reserve(windows)
            except (redis.RedisError, OSError) as exc:
                self._failed(exc)
            else:
                self._recovered()
                return reserved if reserved.token is None else Reserved("r" + reserved.token, 0.0)
        reserved = self._local.reserve(self._divided(windows))
        return reserved if reserved.token is None else Reserved("l" + reserved.token, 0.0)

    def give_back(self, windows: Sequence[Window], token: str) -> None:
        if token.startswith("l"):
            self._local.give_back(self._divided(windows), token[1:])
        else:
            self._shared.give_back(windows, token[1:])

    def reset(self) -> None:
        self._local.reset()
        self._shared.reset()

    def _probe(self) -> bool:
        """Whether this caller tries Redis again now: one caller when the pause is over, while the
        others go on counting in memory (its failure starts another pause)."""
        with self._lock:
            if self._retry_at is None or self._clock() < self._retry_at:
                return self._retry_at is None
            self._retry_at = self._clock() + self.RETRY_SECONDS
            return True

    def _divided(self, windows: Sequence[Window]) -> list[Window]:
        return [
            (type(item)(max(1, item.amount // self._workers), item.multiples, item.namespace), ids)
            for item, ids in windows
        ]

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self._retry_at is None
            self._retry_at = self._clock() + self.RETRY_SECONDS
        if first:
            log.error(
                "Redis unreachable (%s): attempt budgets are counted per process, each divided "
                "by %d worker(s), until it answers again",
                type(exc).__name__,
                self._workers,
            )

    def _recovered(self) -> None:
        if self._retry_at is not None:  # checked first without the lock: the usual case
            with self._lock:
                was_degraded, self._retry_at = self._retry_at is not None, None
            if was_degraded:
                log.warning("Redis answers again: attempt budgets are shared again")


def open_counters(
    redis_url: str | None, prefix: str = "giftcards", workers: int = 1
) -> LocalCounters | SharedCounters:
    if redis_url is None:
        return LocalCounters()
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("GIFTCARDS_REDIS_URL: expected redis://host:port/db")
    # Redis answers in a millisecond on a sound network; a longer wait would hold the request
    # (and, for lookups, the worker's event loop), so half a second means unreachable.
    client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return SharedCounters(RedisCounters(client, prefix), workers)
