"""The typed context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.policy import Principal
from app.services import Services


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    principal: Principal
    request_id: str
    # The request's ``scope["state"]``: the schema leaves the root fields it ran there (app.observe).
    request_state: dict[str, Any] = field(default_factory=dict, compare=False)
