"""The typed context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass

from app.policy import Principal
from app.services import Services


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    principal: Principal
    request_id: str
