"""Rate limits on attempts that could guess secrets: codes (and PINs) typed by untrusted callers,
and client secrets at the token endpoint.

Built on the ``limits`` library with moving windows: counters live in process memory by default,
or in Redis when ``GIFTCARDS_REDIS_URL`` is set, so that every worker and host shares them. Each
attempt is counted against every configured limit for every key it carries (token subject and
client address); one exhausted counter refuses the attempt, which then still counts, so a caller
over the limit cannot probe valid codes until its window has moved on.

When Redis cannot be reached the attempt is refused (fail closed) and the reason logged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.errors import ConfigurationError, GiftCardError, RateLimitedError, UnavailableError

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


def open_storage(redis_url: str | None, prefix: str = "giftcards") -> Storage:
    if redis_url is None:
        return MemoryStorage()
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("GIFTCARDS_REDIS_URL: expected redis://host:port/db")
    storage = storage_from_string(redis_url, key_prefix=prefix, socket_timeout=2)
    assert isinstance(storage, Storage)  # a sync storage for a redis:// URL
    return storage


class Throttle:
    """Counts attempts in one namespace (``code``, ``client-secret`` …) against its limits."""

    def __init__(self, storage: Storage, namespace: str, limits: Sequence[RateLimitItem]) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
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
        except GiftCardError:
            raise
        except Exception:  # the storage (Redis) failed: refuse, never let guesses through unseen
            log.exception("rate limit storage unavailable (%s)", self._namespace)
            raise UnavailableError("attempts cannot be counted right now; try again later") from None
        raise RateLimitedError(RATE_LIMITED_MESSAGE, retry_after=retry_after)

    def reset(self) -> None:
        """Forget every counter of the storage (tests and `giftcards` maintenance only)."""
        self._limiter.storage.reset()

    def _seconds_until_free(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> int:
        stats = self._limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))
