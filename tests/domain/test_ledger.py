"""The ledger's refusal floor: an untrusted refusal sleeps out what is left of the floor, no more."""

from __future__ import annotations

import pytest

from app.domain import addressing as addressing_module
from app.domain.trans_requests import TransRequest
from app.enums import CodeType, TransType
from app.errors import CardNotUsableError, NotFoundError
from app.policy import Principal

UNTRUSTED = Principal("kiosk", frozenset({"UsePhysicalGiftCardCodes", "GiftCardTransUse"}))
TRUSTED = Principal("office", frozenset({"UsePhysicalGiftCardCodes", "GiftCardTransUse", "ListGiftCards"}))
UNKNOWN = TransRequest(TransType.USE, "-1.00", code_type=CodeType.PHYSICAL, code="NOSUCHCODE01")


class Clock:
    """Stands in for the ledger's ``time``: the readings it is given, and the sleeps asked of it."""

    def __init__(self, *readings: float) -> None:
        self.readings, self.slept = list(readings), list[float]()

    def monotonic(self) -> float:
        return self.readings.pop(0)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.mark.settings(refusal_floor_ms=500)
@pytest.mark.parametrize(
    ("readings", "slept"),
    [((100.0, 100.125), [0.375]), ((100.0, 100.5), []), ((100.0, 101.0), [])],
    ids=["early", "exactly the floor", "late"],
)
def test_an_untrusted_refusal_sleeps_what_is_left_of_the_floor(services, monkeypatch, readings, slept):
    clock = Clock(*readings)
    monkeypatch.setattr(addressing_module, "time", clock)

    with pytest.raises(CardNotUsableError):
        services.ledger.create(UNTRUSTED, UNKNOWN)

    assert clock.slept == slept


@pytest.mark.settings(refusal_floor_ms=500)
def test_a_trusted_refusal_does_not_wait(services, monkeypatch):
    clock = Clock(100.0, 100.125)
    monkeypatch.setattr(addressing_module, "time", clock)

    with pytest.raises(NotFoundError):
        services.ledger.create(TRUSTED, UNKNOWN)

    assert clock.slept == []
