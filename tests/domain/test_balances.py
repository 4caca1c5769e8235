"""A card's money rules: debits within what is available (partial ones cut to it), credits under the
ceiling, holds that lapse no later than the card, and what an untrusted caller is told (stand-in
ledger store and session, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from app.domain import balances as balances_module
from app.domain.addressing import UNUSABLE
from app.domain.balances import BalanceRules, Change, hide
from app.errors import (
    BadUserInputError,
    CardNotUsableError,
    ConflictError,
    InsufficientFundsError,
    LimitExceededError,
)
from app.models import GiftCard
from app.policy import Principal
from app.store.money import LockedCard

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TTL = timedelta(days=7)
SESSION: Any = object()  # the stand-in ledger never touches it

TRUSTED = Principal("office", frozenset({"ListGiftCards", "GiftCardTransUse"}))
FINDER = Principal("pos", frozenset({"FindGiftCardByCode", "GiftCardTransUse"}))
UNTRUSTED = Principal("kiosk", frozenset({"UsePhysicalGiftCardCodes", "GiftCardTransUse"}))


class Ledger:
    """Stands in for ``app.store.ledger``: what the card's open debit holds hold, and the balance
    change's answer (the new balance, or None when its condition refused it)."""

    def __init__(self, held: int = 0, changed: int | None = None) -> None:
        self.held, self._changed = held, changed  # held: read with the locked card
        self.asked: list[tuple[str, tuple[object, ...]]] = []

    def change_balance(self, session, card_id, amount, now, ceiling, values, conditions):
        self.asked.append(("change_balance", (session, card_id, amount, now, ceiling, values, conditions)))
        return self._changed


@pytest.fixture
def ledger(monkeypatch):
    def install(**answers) -> Ledger:
        stand_in = Ledger(**answers)
        monkeypatch.setattr(balances_module, "store", stand_in)
        return stand_in

    return install


def _card(balance: int = 0, currency: str = "EUR", expires_at: datetime | None = None) -> GiftCard:
    return GiftCard(
        id=7,
        currency=currency,
        state="ACTIVE",
        balance=balance,
        created_at=NOW,
        updated_at=NOW,
        expires_at=expires_at,
    )


def _amount(principal: Principal, card: GiftCard, text: str, allow_partial: bool) -> tuple[int, bool, int]:
    """The rules' amount on ``card`` as the money path locks it, holding what the stand-in says."""
    assert card.id is not None
    locked = LockedCard(
        id=card.id,
        store_id="default",
        currency=card.currency,
        state=card.state,
        balance=card.balance,
        program_id=None,
        usable_from=None,
        expires_at=card.expires_at,
        held=cast("Any", balances_module.store).held,  # the stand-in's
    )
    return _rules().amount(principal, locked, text, allow_partial)


def _rules(max_balance: int = 1000) -> BalanceRules:
    return BalanceRules(max_balance, TTL)


def _uniform(error: BaseException) -> bool:
    return type(error) is CardNotUsableError and error.message == UNUSABLE and error.field is None


# --- hide --------------------------------------------------------------------------------------


@pytest.mark.parametrize("principal", [TRUSTED, FINDER], ids=["ListGiftCards", "FindGiftCardByCode"])
def test_a_caller_that_may_look_the_card_up_gets_the_error_itself(principal):
    error = InsufficientFundsError("amount: more than the available balance", field="amount")
    assert hide(principal, error) is error


def test_any_other_caller_gets_the_uniform_refusal():
    assert _uniform(hide(UNTRUSTED, ConflictError("x: no", field="x")))


# --- the amount --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("5.00", "EUR", 500),
        ("5", "EUR", 500),
        ("-0.01", "EUR", -1),
        ("12", "JPY", 12),
        ("1.234", "BHD", 1234),
    ],
)
def test_an_amount_is_read_in_the_card_currency(ledger, text, currency, minor):
    ledger(held=0)
    card = _card(balance=10_000, currency=currency)
    assert _amount(TRUSTED, card, text, False) == (minor, False, 0)


@pytest.mark.parametrize(("text", "minor"), [("25.00", 2500), ("0.00", 0)])
def test_a_credit_is_taken_whatever_is_held(ledger, text, minor):
    ledger(held=900)  # more than the balance: nothing is available
    assert _amount(UNTRUSTED, _card(balance=100), text, False) == (minor, False, 900)


@pytest.mark.parametrize(("text", "minor"), [("-7.00", -700), ("-6.99", -699)])
def test_a_debit_within_the_available_balance_is_taken_whole(ledger, text, minor):
    ledger(held=300)  # available: 10.00 - 3.00
    assert _amount(TRUSTED, _card(balance=1000), text, True) == (minor, False, 300)


def test_a_debit_beyond_the_available_balance_is_refused(ledger):
    ledger(held=300)
    with pytest.raises(InsufficientFundsError) as caught:
        _amount(TRUSTED, _card(balance=1000), "-7.01", False)
    assert (caught.value.message, caught.value.field) == ("amount: more than the available balance", "amount")


@pytest.mark.parametrize(("balance", "held", "taken"), [(1000, 300, -700), (301, 300, -1)])
def test_a_partial_debit_takes_what_is_available(ledger, balance, held, taken):
    ledger(held=held)
    assert _amount(TRUSTED, _card(balance=balance), "-50.00", True) == (
        taken,
        True,
        held,
    )


@pytest.mark.parametrize(("balance", "held"), [(0, 0), (500, 500), (500, 600)])
def test_a_partial_debit_with_nothing_available_is_refused(ledger, balance, held):
    ledger(held=held)
    with pytest.raises(InsufficientFundsError) as caught:
        _amount(TRUSTED, _card(balance=balance), "-1.00", True)
    assert caught.value.message == "amount: more than the available balance"


def test_insufficient_funds_is_the_uniform_refusal_for_an_untrusted_caller(ledger):
    ledger(held=0)
    with pytest.raises(CardNotUsableError) as caught:
        _amount(UNTRUSTED, _card(balance=100), "-1.01", False)
    assert _uniform(caught.value)


def test_a_caller_that_may_find_by_code_is_told_of_insufficient_funds(ledger):
    ledger(held=0)
    with pytest.raises(InsufficientFundsError):
        _amount(FINDER, _card(balance=100), "-1.01", False)


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("1.001", "EUR", "amount: EUR allows at most 2 decimal places"),
        ("1.5", "JPY", "amount: JPY allows at most 0 decimal places"),
    ],
)
def test_decimals_the_currency_lacks_are_refused(ledger, text, currency, message):
    ledger(held=0)
    with pytest.raises(BadUserInputError) as caught:
        _amount(TRUSTED, _card(balance=100, currency=currency), text, False)
    assert (caught.value.message, caught.value.field) == (message, "amount")


def test_decimals_the_currency_lacks_are_the_uniform_refusal_for_an_untrusted_caller(ledger):
    # The message would tell the card's currency, so that the code exists.
    ledger(held=0)
    with pytest.raises(CardNotUsableError) as caught:
        _amount(UNTRUSTED, _card(balance=100, currency="JPY"), "1.5", False)
    assert _uniform(caught.value)


# --- holds -------------------------------------------------------------------------------------


def test_a_hold_is_authorized_until_its_time_runs_out():
    assert _rules().hold(TRUSTED, _card(balance=1000), -500, NOW) == {
        "status": "AUTHORIZED",
        "authorized_amount": -500,
        "hold_expires_at": NOW + TTL,
    }


def test_a_hold_lapses_when_the_card_expires_if_that_is_sooner():
    expires = NOW + timedelta(days=1)
    assert (
        _rules().hold(TRUSTED, _card(balance=1000, expires_at=expires), -500, NOW)["hold_expires_at"]
        == expires
    )


def test_a_card_expiring_after_the_hold_time_does_not_lengthen_it():
    later = NOW + TTL + timedelta(seconds=1)
    assert (
        _rules().hold(TRUSTED, _card(balance=1000, expires_at=later), -500, NOW)["hold_expires_at"]
        == NOW + TTL
    )


def test_a_credit_hold_up_to_the_ceiling_is_authorized():
    # 1000 EUR is 100000 minor units.
    assert _rules(1000).hold(TRUSTED, _card(balance=90_000), 10_000, NOW)["authorized_amount"] == 10_000


@pytest.mark.parametrize(
    ("currency", "balance", "amount", "message"),
    [
        ("EUR", 90_000, 10_001, "amount: a card may hold at most 1000.00 EUR"),
        ("JPY", 900, 101, "amount: a card may hold at most 1000 JPY"),
        ("BHD", 0, 1_000_001, "amount: a card may hold at most 1000.000 BHD"),
    ],
)
def test_a_credit_hold_over_the_ceiling_is_refused_at_once(currency, balance, amount, message):
    with pytest.raises(LimitExceededError) as caught:
        _rules(1000).hold(TRUSTED, _card(balance=balance, currency=currency), amount, NOW)
    error = caught.value
    assert (error.message, error.field, error.limit) == (message, "amount", "max_balance")
    assert error.extensions == {"code": "LIMIT_EXCEEDED", "field": "amount", "limit": "max_balance"}


def test_a_debit_hold_is_not_held_to_the_ceiling():
    # A card above a lowered ceiling can still be spent.
    assert _rules(1).hold(TRUSTED, _card(balance=50_000), -100, NOW)["authorized_amount"] == -100


def test_a_hold_over_the_ceiling_is_the_uniform_refusal_for_an_untrusted_caller():
    with pytest.raises(CardNotUsableError) as caught:
        _rules(1).hold(UNTRUSTED, _card(balance=100), 1, NOW)
    assert _uniform(caught.value)


# --- applying an amount ------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "ceiling"), [("EUR", 100_000), ("JPY", 1000), ("BHD", 1_000_000)])
def test_apply_changes_the_balance_under_the_ceiling_in_minor_units(ledger, currency, ceiling):
    stand_in = ledger(changed=1234)
    assert _rules(1000).apply(SESSION, _card(balance=1000, currency=currency), 234, NOW, Change()) == 1234
    assert stand_in.asked == [("change_balance", (SESSION, 7, 234, NOW, ceiling, {}, []))]


def test_a_refused_credit_passed_the_ceiling(ledger):
    ledger(changed=None)
    with pytest.raises(LimitExceededError) as caught:
        _rules(1000).apply(SESSION, _card(balance=1000), 1, NOW, Change())
    assert (caught.value.message, caught.value.limit) == (
        "amount: a card may hold at most 1000.00 EUR",
        "max_balance",
    )


def test_a_refused_debit_went_below_zero(ledger):
    ledger(changed=None)
    with pytest.raises(InsufficientFundsError) as caught:
        _rules().apply(SESSION, _card(balance=0), -1, NOW, Change())
    assert (caught.value.message, caught.value.field) == ("amount: more than the balance", "amount")
