"""Budgets for attempts that could guess secrets: codes (and PINs) typed by untrusted callers, and
client secrets at the token endpoint.

Limits are written and parsed as the ``limits`` library does (``30/minute;10/10 seconds``) and
counted in moving windows (:mod:`app.auth.counters`). An attempt reserves a unit from every limit
of every key it carries (token subject and client address, or client id and address) before the
work it guards, all or none in one atomic step; a reserved unit counts while the attempt runs. A
success (a live code, a right PIN, a right secret) gives it back; a miss keeps it until it ages out
of the window. So the misses in a window plus the attempts in flight never pass the limit, however
many arrive at once, and honest traffic only holds units while its requests run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from limits import RateLimitItem, parse_many

from app.auth.counters import Counters, Window
from app.errors import ConfigurationError, RateLimitedError

log = logging.getLogger("app.throttle")

RATE_LIMITED_MESSAGE = "too many attempts; try again later"

Limits = tuple[RateLimitItem, ...]


def parse_limits(text: str, setting: str) -> Limits:
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


class Throttle:
    """Reserves units in one namespace (``code``, ``client-secret`` …) against its limits;
    ``on_refused`` is told of each refusal (the metrics count them)."""

    def __init__(
        self,
        counters: Counters,
        namespace: str,
        limits: Sequence[RateLimitItem],
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self._counters = counters
        self._namespace = namespace
        self._limits = tuple(limits)
        self._on_refused = on_refused

    def reserve(
        self, keys: Iterable[tuple[str, str | None]], limits: Mapping[str, Limits] | None = None
    ) -> Reservation:
        """Take a unit from every limit of every ``(kind, value)`` key, or raise RateLimitedError,
        taking none, when one has no unit left. ``limits`` gives some kinds of key limits of their
        own (a role's budget); keys whose value is None (an unknown client address) are skipped."""
        windows = [
            (item, (self._namespace, kind, value))
            for kind, value in keys
            if value is not None
            for item in (limits or {}).get(kind, self._limits)
        ]
        reserved = self._counters.reserve(windows)
        if reserved.token is None:
            if self._on_refused is not None:
                self._on_refused()
            raise RateLimitedError(RATE_LIMITED_MESSAGE, retry_after=max(1, math.ceil(reserved.retry_after)))
        return Reservation(self._counters, windows, reserved.token)

    def reset(self) -> None:
        """Forget every counter (tests only)."""
        self._counters.reset()


class Reservation:
    """A unit taken by :meth:`Throttle.reserve`; kept, it is a miss in every window."""

    def __init__(self, counters: Counters, windows: Sequence[Window], token: str) -> None:
        self._counters = counters
        self._windows = tuple(windows)
        self._token: str | None = token

    def give_back(self) -> None:
        """Return the unit (a success, or nothing was tried); once only, later calls do nothing.
        When Redis fails here the unit stays spent, as a miss would: logged, not raised."""
        token, self._token = self._token, None
        if token is None:
            return
        try:
            self._counters.give_back(self._windows, token)
        except Exception:
            log.exception("an attempt's unit could not be given back; it counts as a miss")
