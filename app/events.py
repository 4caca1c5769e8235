"""What the domain notes as it happens, for whoever counts it (the metrics): an attempt budget
refusing a caller, a code locked by wrong PINs, an idempotent replay. The domain calls
:meth:`Events.note`; it never learns who listens."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class Event(StrEnum):
    CODE_BUDGET_REFUSED = "code"  # a code (or PIN) attempt refused by its budget
    CLIENT_SECRET_BUDGET_REFUSED = "client-secret"  # a client secret refused by its budget
    PIN_LOCKOUT = "pin-lockout"  # the wrong PIN that locked its code
    IDEMPOTENT_REPLAY = "idempotent-replay"  # a stored answer sent again for a retried key


Listener = Callable[[Event], None]


class Events:
    """The one listener of a process's events (the app's metrics sets it); without one, noting does
    nothing. A listener is called on whatever thread the event happens and must be quick."""

    def __init__(self) -> None:
        self.listener: Listener | None = None

    def note(self, event: Event) -> None:
        listener = self.listener
        if listener is not None:
            listener(event)
