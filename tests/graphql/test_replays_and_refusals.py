"""A retry replays the first answer whatever happened since; refusals tell a guesser nothing.

A keyed debit is answered again as it was, even after its code was revoked or replaced, its member
unlinked or its PIN locked; nothing but the key is looked at. And a caller that may not look codes
up gets the same answer for a real and an unknown code whatever the amount.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import error_codes, fund, gql

CODE, PIN, MEMBER = "REPLAYCODE01", "4321", "M-REPLAY-1"
OTHER = "REPLAYCODE02"
TRANS = """mutation T($trans: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) { id balance amount } }"""
EDIT = """mutation E($giftcard: GiftCardEditInput!) { giftcardEdit(giftcard: $giftcard) { id } }"""
DEBIT = {"transType": "USE", "amount": "-1.00", "codeType": "PHYSICAL", "code": CODE, "pin": PIN}
POS = ["FindGiftCardByCode", "UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes", "GiftCardTransUse"]


@pytest.fixture
def card(seed, services):
    card_id = seed(
        {CodeType.PHYSICAL: CODE, CodeType.PERSONAL: "REPLAYPERSONAL000001"}, pin=PIN, member_id=MEMBER
    )
    fund(services.engine, card_id, 1000)
    return card_id


def _count(services, sql: str) -> int:
    with services.engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def _wrong_pins(client, token, times):
    for n in range(times):
        gql(client, TRANS, {"trans": {**DEBIT, "pin": f"{9000 + n}"}}, token=token)


PERSONAL_DEBIT = {
    "transType": "USE",
    "amount": "-1.00",
    "codeType": "PERSONAL",
    "code": "REPLAYPERSONAL000001",
}


@pytest.mark.parametrize("since", ["revoked", "replaced", "member unlinked", "PIN locked"])
def test_a_retry_replays_the_first_answer_whatever_happened_since(client, mint, card, services, since):
    # given a keyed debit by code (and PIN) that succeeded
    pos, admin = mint(permissions=POS, sub="till-1"), mint(roles=["admin"], sub="office")
    trans = PERSONAL_DEBIT if since == "member unlinked" else DEBIT
    first = gql(client, TRANS, {"trans": trans, "key": "sale-0001"}, token=pos)
    assert error_codes(first) == [] and first["data"]["giftcardTransAdd"]["balance"] == "9.00"

    # when the code, the card or the PIN changes
    edits: dict[str, dict[str, Any]] = {
        "revoked": {"revokePhysicalCode": True},
        "replaced": {"physicalCode": OTHER},
        "member unlinked": {"unlinkMember": True},
    }
    if since in edits:
        edit = gql(client, EDIT, {"giftcard": {"id": str(card), **edits[since]}}, token=admin)
        assert error_codes(edit) == []
    else:
        _wrong_pins(client, mint(permissions=POS, sub="someone"), 5)
    # (a new request would now be refused)
    assert error_codes(gql(client, TRANS, {"trans": trans}, token=pos)) != []
    rows = _count(services, "SELECT COUNT(*) FROM giftcard_transactions")

    # then the same retry answers as the first request did, and nothing more is written
    assert gql(client, TRANS, {"trans": trans, "key": "sale-0001"}, token=pos) == first
    assert _count(services, "SELECT COUNT(*) FROM giftcard_transactions") == rows
    assert _count(services, f"SELECT balance FROM giftcards WHERE id = {card}") == 900


@pytest.mark.settings(code_attempt_limits="1/minute")
def test_a_replay_spends_no_attempt_and_checks_no_pin(client, mint, card, services):
    pos = mint(permissions=POS, sub="till-2")
    first = gql(client, TRANS, {"trans": DEBIT, "key": "sale-0003"}, token=pos)
    assert error_codes(first) == []
    # a mistyped code spends the budget (a hit, as the first debit was, gives its unit back) …
    typo = gql(client, TRANS, {"trans": {**DEBIT, "code": "REPLAYCODE09"}, "key": "sale-0004"}, token=pos)
    assert error_codes(typo) == ["CARD_NOT_USABLE"]
    # … yet the retry is answered; a new request is not
    assert gql(client, TRANS, {"trans": DEBIT, "key": "sale-0003"}, token=pos) == first
    new = gql(client, TRANS, {"trans": DEBIT, "key": "sale-0005"}, token=pos)
    assert error_codes(new) == ["RATE_LIMITED"]


def test_a_replay_still_needs_the_same_subject_and_permissions(client, mint, card):
    first = gql(client, TRANS, {"trans": DEBIT, "key": "sale-0005"}, token=mint(permissions=POS, sub="a"))
    assert error_codes(first) == []
    # another subject: a key of its own, so a new debit
    other = gql(client, TRANS, {"trans": DEBIT, "key": "sale-0005"}, token=mint(permissions=POS, sub="b"))
    assert other["data"]["giftcardTransAdd"]["id"] != first["data"]["giftcardTransAdd"]["id"]
    # the same subject with other permissions: not the same request
    fewer = gql(
        client,
        TRANS,
        {"trans": DEBIT, "key": "sale-0005"},
        token=mint(permissions=[*POS, "GiftCardTransAdd"], sub="a"),
    )
    assert error_codes(fewer) == ["CONFLICT"]
    # without the transaction's permission, no replay at all
    refused = gql(
        client,
        TRANS,
        {"trans": DEBIT, "key": "sale-0005"},
        token=mint(permissions=["UsePhysicalGiftCardCodes"], sub="a"),
    )
    assert error_codes(refused) == ["FORBIDDEN"]


# --- refusals that tell a guesser nothing ----------------------------------------------------

# Spends by code, but may not look codes up: must not learn from an answer that a code exists.
BLIND = ["UsePhysicalGiftCardCodes", "GiftCardTransUse"]


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0", "BAD_USER_INPUT"),  # needs no card: refused before any is looked at
        ("1.00", "BAD_USER_INPUT"),  # the wrong sign for a USE: the same
        ("12,5", "BAD_USER_INPUT"),
        ("-0.001", "CARD_NOT_USABLE"),  # USD has two decimals: that needs the card
        ("-50.00", "CARD_NOT_USABLE"),  # more than the funds: that needs the card too
    ],
)
def test_an_amount_tells_a_blind_caller_nothing_about_the_code(
    client, mint, card, services, amount, expected
):
    token = mint(permissions=BLIND, sub="blind")
    answers = []
    for code in (CODE, "REPLAYUNKNOWN9"):
        body = gql(client, TRANS, {"trans": {**DEBIT, "code": code, "amount": amount}}, token=token)
        answers.append(body)
    assert error_codes(answers[0]) == [expected]
    assert answers[0] == answers[1]  # byte for byte, message included
    assert _count(services, f"SELECT balance FROM giftcards WHERE id = {card}") == 1000


def test_a_caller_that_may_look_the_code_up_is_told_about_its_funds(client, mint, card):
    body = gql(client, TRANS, {"trans": {**DEBIT, "amount": "-50.00"}}, token=mint(permissions=POS))
    assert error_codes(body) == ["INSUFFICIENT_FUNDS"]
    body = gql(client, TRANS, {"trans": {**DEBIT, "amount": "-0.001"}}, token=mint(permissions=POS))
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "amount"
