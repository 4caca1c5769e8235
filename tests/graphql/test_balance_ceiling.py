"""GIFTCARDS_MAX_BALANCE: credits that would pass it are LIMIT_EXCEEDED (the uniform refusal to a caller
that may not look codes up) and change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.addressing import UNUSABLE
from app.enums import CodeType
from app.store import ledger
from tests.conftest import fund, gql

TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) {
  id status amount balance availableBalance } }"""
CAPTURE = """mutation C($id: ID!) { giftcardTransCapture(id: $id) { id status balance } }"""
CANCEL = """mutation X($id: ID!) { giftcardTransCancel(id: $id) { id status balance } }"""
BALANCE = """query B($id: ID!) { giftcard(id: $id) { results { balance } } }"""
LIMIT_EXCEEDED = {"code": "LIMIT_EXCEEDED", "field": "amount", "limit": "maxBalance"}
KIOSK = ["UsePhysicalGiftCardCodes", "GiftCardTransAdd"]  # loads by code; cannot look codes up
# The load that, repeated about 9,220 times, used to overflow a 64-bit balance.
HUGE_LOAD = "10000000000000.00"


@pytest.fixture
def admin(mint):
    return mint(roles=["admin"], sub="back-office")


def _card(seed, services, units: int, currency: str = "USD", code: str = "CEILING0001") -> int:
    card_id = seed({CodeType.PHYSICAL: code}, currency=currency)
    fund(services.engine, card_id, units)
    return card_id


def _trans(client, token, card_id, amount, trans_type="ADD", **extra):
    trans = {"giftcardId": str(card_id), "transType": trans_type, "amount": amount, **extra}
    return gql(client, TRANS, {"trans": trans}, token=token)


def _balance(client, token, card_id) -> str:
    body = gql(client, BALANCE, {"id": str(card_id)}, token=token)
    return str(body["data"]["giftcard"]["results"][0]["balance"])


def _refused(body) -> None:
    assert [*body["data"].values()] == [None], body  # the one root field is null
    assert [error["extensions"] for error in body["errors"]] == [LIMIT_EXCEEDED], body


def _verified(services) -> None:
    assert ledger.verify(services.engine, datetime.now(UTC))[1] == []


def test_trusted_loads_of_a_huge_amount_are_refused_not_internal(client, admin, seed, services):
    # given a card and another one beside it
    card_id = _card(seed, services, 1000)
    other_id = _card(seed, services, 500, code="CEILING0002")

    # when a trusted caller keeps loading 10,000,000,000,000.00 onto it
    answers = [_trans(client, admin, card_id, HUGE_LOAD, kind) for kind in ("ADD", "IMPORT", "ADJUST")]

    # then each load is LIMIT_EXCEEDED and nothing moved on either card
    for body in answers:
        _refused(body)
    assert (_balance(client, admin, card_id), _balance(client, admin, other_id)) == ("10.00", "5.00")
    _verified(services)


def test_a_balance_near_the_column_end_is_refused_not_internal(client, admin, seed, services):
    # given a card that about 9,220 such loads have brought within one more of the 64-bit column's
    # end (over any ceiling: funded before there was one)
    card_id = _card(seed, services, 2**63 - 10**15 + 1)

    # when one more load comes in
    body = _trans(client, admin, card_id, HUGE_LOAD)

    # then it is LIMIT_EXCEEDED, not an overflow, and the card can still be spent
    _refused(body)
    assert "errors" not in _trans(client, admin, card_id, "-1.00", "USE")
    _verified(services)


@pytest.mark.settings(max_balance=100)
@pytest.mark.parametrize(
    ("currency", "start", "up_to", "one_more", "shown"),
    [
        ("USD", 1000, "90.00", "0.01", "100.00"),
        ("JPY", 10, "90", "1", "100"),
        ("KWD", 10_000, "90.000", "0.001", "100.000"),
    ],
)
def test_the_ceiling_is_accepted_and_one_minor_unit_beyond_it_refused(
    client, admin, seed, services, currency, start, up_to, one_more, shown
):
    # given a card of 10 major units and a ceiling of 100
    card_id = _card(seed, services, start, currency)

    # when it is loaded up to the ceiling exactly, and then by one minor unit more
    loaded = _trans(client, admin, card_id, up_to)
    beyond = _trans(client, admin, card_id, one_more)

    # then the first fits, the second is refused and says why
    assert loaded["data"]["giftcardTransAdd"]["balance"] == shown, loaded
    _refused(beyond)
    assert f"at most {shown} {currency}" in beyond["errors"][0]["message"]
    assert _balance(client, admin, card_id) == shown
    _verified(services)


@pytest.mark.settings(max_balance=100)
def test_a_load_over_the_ceiling_is_told_only_to_a_caller_that_may_look_codes_up(
    client, admin, mint, seed, services
):
    # given a $10 card, a till that may look codes up and a kiosk that may not
    card_id = _card(seed, services, 1000)
    till = mint(permissions=[*KIOSK, "FindGiftCardByCode"], sub="till")
    kiosk = mint(permissions=KIOSK, sub="kiosk")
    load = {"codeType": "PHYSICAL", "code": "CEILING0001", "transType": "ADD", "amount": "90.01"}

    # when each loads it past the ceiling by its code
    told = gql(client, TRANS, {"trans": load}, token=till)
    hidden = gql(client, TRANS, {"trans": load}, token=kiosk)

    # then the till is told the limit; the kiosk gets the uniform refusal, since the limit would
    # tell it that the code exists; and nothing moved
    _refused(told)
    (error,) = hidden["errors"]
    assert (error["extensions"], error["message"]) == ({"code": "CARD_NOT_USABLE"}, UNUSABLE)
    assert _balance(client, admin, card_id) == "10.00"
    _verified(services)


@pytest.mark.settings(max_balance=100)
def test_debits_are_never_held_to_the_ceiling(client, admin, seed, services):
    # given a card above the ceiling (funded before the ceiling was lowered)
    card_id = _card(seed, services, 50_000)

    # when it is spent, and then loaded while still above the ceiling
    spent = _trans(client, admin, card_id, "-100.00", "USE")
    loaded = _trans(client, admin, card_id, "0.01")

    # then the debit goes through and the credit is refused
    assert spent["data"]["giftcardTransAdd"]["balance"] == "400.00", spent
    _refused(loaded)
    _verified(services)


@pytest.mark.settings(max_balance=100)
def test_an_authorized_credit_is_captured_only_within_the_ceiling(client, admin, seed, services):
    # given a $10 card with an authorized $50 credit, and then an immediate $45 load
    card_id = _card(seed, services, 1000)
    held = _trans(client, admin, card_id, "50.00", authorizeOnly=True)["data"]["giftcardTransAdd"]
    assert held["status"] == "AUTHORIZED"
    assert _trans(client, admin, card_id, "45.00")["data"]["giftcardTransAdd"]["balance"] == "55.00"

    # when the credit is captured ($105 > $100)
    body = gql(client, CAPTURE, {"id": held["id"]}, token=admin)

    # then the capture is refused, the authorization stays open and can still be cancelled
    _refused(body)
    assert _balance(client, admin, card_id) == "55.00"
    cancelled = gql(client, CANCEL, {"id": held["id"]}, token=admin)["data"]["giftcardTransCancel"]
    assert (cancelled["status"], cancelled["balance"]) == ("CANCELLED", "55.00")
    _verified(services)


@pytest.mark.settings(max_balance=100)
def test_a_credit_that_cannot_fit_is_not_authorized(client, admin, seed, services):
    card_id = _card(seed, services, 1000)

    body = _trans(client, admin, card_id, "90.01", authorizeOnly=True)

    _refused(body)
    assert _balance(client, admin, card_id) == "10.00"
    _verified(services)


def test_an_amount_too_large_for_one_value_stays_bad_user_input(client, admin, seed, services):
    card_id = _card(seed, services, 1000)

    body = _trans(client, admin, card_id, "99999999999999999.00")

    assert [error["extensions"] for error in body["errors"]] == [
        {"code": "BAD_USER_INPUT", "field": "amount"}
    ]
