"""Code attempts by untrusted callers are counted, so a leaked front-end token cannot enumerate codes.

Every code lookup and every code-addressed transaction or history filter by a caller without
ListGiftCards counts once per resolved field (an aliased field counts each time it resolves),
per token subject and per client address, valid codes included.
"""

from __future__ import annotations

from app.auth.throttle import Throttle
from app.policy import Permission, Principal


def count_code_attempt(throttle: Throttle, principal: Principal) -> None:
    """Count one attempt; raises RateLimitedError when the caller is over its limits."""
    if principal.has(Permission.LIST_GIFT_CARDS):
        return
    throttle.attempt((("subject", principal.subject), ("address", principal.address)))
