"""Code attempts by untrusted callers spend a budget, so a leaked front-end token cannot enumerate codes.

A caller without ListGiftCards reserves one unit per resolved field (an aliased field each time),
per token subject and per client address, before any code is looked at. A hit gives it back; a miss
keeps it until it ages out of the window, so misses in a window plus attempts in flight stay under
the budget (the role's in ``permissions.yaml``, else ``GIFTCARDS_CODE_ATTEMPT_LIMITS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.auth.throttle import Throttle
from app.errors import CardNotUsableError, NotFoundError
from app.policy import Permission, Principal

# How an attempt that found nothing ends: the unknown code, and every uniform refusal (a wrong or
# locked PIN, an unusable code or card). Any other ending tells nothing about the code.
MISSES = (CardNotUsableError, NotFoundError)


@dataclass
class CodeAttempt:
    """One code operation's unit of the caller's budget: kept unless the operation resolves the
    code, or fails in a way that tells nothing about it."""

    resolved: bool = False

    def hit(self) -> None:
        """The code resolved (a live, usable code, and the right PIN where it has one). The unit
        goes back when the block ends, not now: never while a database lock is held."""
        self.resolved = True


def budget_stores(principal: Principal) -> tuple[str, ...]:
    """The budgets a code attempt spends: one per store it searches (``*`` for every store, and
    ``""`` for none: a search of no store finds nothing, so it spends no store's budget)."""
    if principal.has(Permission.ALL_STORES):
        return ("*",)
    return tuple(sorted(principal.stores)) or ("",)


@contextmanager
def code_attempt(throttle: Throttle, principal: Principal) -> Iterator[CodeAttempt]:
    """Reserve a unit (or raise RateLimitedError) for the block, which calls ``hit()`` when the
    code resolves; the unit goes back then (whatever came after: funds too short, or a refusal
    hidden from the caller) or when the block fails in a way that is no miss."""
    attempt = CodeAttempt()
    if principal.is_trusted:
        yield attempt
        return
    budget = principal.budget
    keys = (("subject", principal.subject), ("address", principal.address))
    reservation = throttle.reserve(
        # Per store: one store's misses never spend, nor tell of, another's budget; a search of
        # several stores spends each one's, so naming one of them (storeId) opens no fresh budget.
        tuple(
            (kind, None if value is None else f"{store}|{value}")
            for store in budget_stores(principal)
            for kind, value in keys
        ),
        None if budget is None else {"subject": budget.per_subject, "address": budget.per_address},
    )
    try:
        yield attempt
    except MISSES:
        raise
    except BaseException:
        attempt.hit()
        raise
    finally:
        if attempt.resolved:
            reservation.give_back()
