"""Coming from the REST API, end to end: a back office reserves a pool of codes for printing and
sells a card from one with a value and a sale id under its card product ("GC"), checks its balance
with history, open authorizations and available balance, and prints its certificate; a till
authorizes with an AuthCode and captures or cancels by it. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import answered, gql
from tests.graphql.conftest import POS, PROGRAM_ADD, PROGRAM_FORMAT
from tests.test_certificates import PHYSICAL_USE, PRINT, certificate, decoded

RESERVE = """mutation R($count: Int!, $agency: String!, $requestName: String!) {
  giftcardReserveCodes(count: $count, agency: $agency, requestName: $requestName) { codes } }"""
RESERVATIONS = """query V($requestName: String!) {
  giftcardReservations(requestName: $requestName) { count usedCount } }"""
SELL = """mutation S($card: GiftCardAddInput!) { giftcardAdd(giftcard: $card) {
  id state balance initialValue sourceId program { code } codes { codeType code isMasked } } }"""
ROW = "transType status amount balanceBefore balanceAfter sourceId locationId createdBy"
BALANCE_CHECK = f"""query B($code: String!) {{
  giftcard(code: $code, codeType: PHYSICAL) {{ results {{ id state balance availableBalance
    transactions {{ {ROW} }} openAuthorizations {{ {ROW} authorizedAmount authCode }} }} }}
  giftcardTransactions(filter: {{code: $code, codeType: PHYSICAL}}) {{ edges {{ node {{ {ROW} }} }} }} }}"""
ANSWER = "id status amount balance availableBalance authCode"
TRANS = f"""mutation T($trans: GiftCardTransInput!) {{ giftcardTransAdd(trans: $trans) {{ {ANSWER} }} }}"""
CAPTURE = f"""mutation C($authCode: String!, $amount: String) {{
  giftcardTransCapture(authCode: $authCode, amount: $amount) {{ {ANSWER} }} }}"""
CANCEL = f"""mutation X($authCode: String!) {{ giftcardTransCancel(authCode: $authCode) {{ {ANSWER} }} }}"""
SALE = "SALE-1042"


@pytest.fixture
def till(mint):
    """The shop's till: looks cards up by code and spends; may not list cards or print."""
    return mint(permissions=POS, sub="till")


@pytest.fixture
def sold(client, mint):
    """The back office's sale: a pool of 3 reserved codes, cards sold from the first two (50.00 on
    sale SALE-1042, 20.00 on SALE-1043) under the program "GC"; the codes and the cards."""
    office = mint(roles=["admin"], sub="office")
    product = {"code": "GC", "name": "Gift card", "currency": "USD", "codeFormat": PROGRAM_FORMAT}
    program = answered(gql(client, PROGRAM_ADD, {"program": product}, token=office), "giftcardProgramAdd")
    pool = {"count": 3, "agency": "PrintCo", "requestName": "spring-2027"}
    codes = answered(gql(client, RESERVE, pool, token=office), "giftcardReserveCodes")["codes"]
    cards = []
    for code, value, sale in ((codes[0], "50.00", SALE), (codes[1], "20.00", "SALE-1043")):
        card = {"physicalCode": code, "initialValue": value, "sourceId": sale, "programId": program["id"]}
        cards.append(answered(gql(client, SELL, {"card": card}, token=office), "giftcardAdd"))
    return codes, cards, office


def _row(trans_type, status, amount, before, after, source=None, by="till"):
    return {
        "transType": trans_type,
        "status": status,
        "amount": amount,
        "balanceBefore": before,
        "balanceAfter": after,
        "sourceId": source,
        "locationId": None,
        "createdBy": by,
    }


ISSUED = _row("ADD", "COMPLETED", "50.00", "0.00", "50.00", SALE, by="office")


def _check(client, office, code):
    """The balance check: the card by its code, and its history."""
    body = gql(client, BALANCE_CHECK, {"code": code}, token=office)
    assert "errors" not in body, body
    (card,) = body["data"]["giftcard"]["results"]
    history = [edge["node"] for edge in body["data"]["giftcardTransactions"]["edges"]]
    return card, history


def _authorize(client, till, code, amount, sale):
    trans = {"codeType": "PHYSICAL", "code": code, "transType": "USE", "amount": amount}
    trans |= {"authorizeOnly": True, "sourceId": sale}
    return answered(gql(client, TRANS, {"trans": trans}, token=till), "giftcardTransAdd")


def test_a_card_sold_from_a_reserved_code_carries_its_value_and_sale(client, sold):
    codes, (card, other), office = sold
    # then each card is ACTIVE with its value, its sale and its reserved code, shown in full
    assert {key: card[key] for key in ("state", "balance", "initialValue", "sourceId", "program")} == {
        "state": "ACTIVE",
        "balance": "50.00",
        "initialValue": "50.00",
        "sourceId": SALE,
        "program": {"code": "GC"},
    }
    assert card["codes"] == [{"codeType": "PHYSICAL", "code": codes[0], "isMasked": False}]
    assert (other["balance"], other["codes"][0]["code"]) == ("20.00", codes[1])
    # and the pool shows two of its three codes used
    pool = gql(client, RESERVATIONS, {"requestName": "spring-2027"}, token=office)
    assert pool["data"]["giftcardReservations"] == [{"count": 3, "usedCount": 2}]
    # and the balance check shows the issue as the card's one ADD, with the sale id, no hold
    found, history = _check(client, office, codes[0])
    assert (found["id"], found["state"], found["balance"], found["availableBalance"]) == (
        card["id"],
        "ACTIVE",
        "50.00",
        "50.00",
    )
    assert found["transactions"] == history == [ISSUED]
    assert found["openAuthorizations"] == []


def test_the_certificate_prints_the_cards_code(client, sold, mint, tmp_path):
    codes, (card, _), _ = sold
    printer = mint(permissions=[PRINT, PHYSICAL_USE], sub="printer")
    # when the back office prints the sold card's certificate as a PNG
    response = certificate(client, card["id"], printer, "?format=png")
    # then it is an image, never cached, whose QR code and barcode read back as the card's code
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"
    assert decoded(response.content, "png", tmp_path) == [f"CODE-128:{codes[0]}", f"QR-Code:{codes[0]}"]


def test_authorize_then_capture_less_by_the_auth_code(client, sold, till):
    codes, _, office = sold
    # when the till authorizes 30.00 on sale SALE-2001
    hold = _authorize(client, till, codes[0], "-30.00", "SALE-2001")
    # then it answers an auth code; the balance stays, 30.00 is held
    assert len(hold["authCode"]) == 26
    assert (hold["status"], hold["balance"], hold["availableBalance"]) == ("AUTHORIZED", "50.00", "20.00")
    held = _row("USE", "AUTHORIZED", "-30.00", "50.00", "50.00", "SALE-2001")
    found, history = _check(client, office, codes[0])
    assert (found["balance"], found["availableBalance"]) == ("50.00", "20.00")
    assert found["openAuthorizations"] == [held | {"authorizedAmount": "-30.00", "authCode": None}]
    assert history == [ISSUED, held]
    # when the till captures 12.50 of it by the auth code, in groups of four with dashes, in lower case
    spelled = "-".join(hold["authCode"][i : i + 4] for i in range(0, 26, 4)).lower()
    captured = answered(
        gql(client, CAPTURE, {"authCode": spelled, "amount": "-12.50"}, token=till), "giftcardTransCapture"
    )
    # then 12.50 is spent and the rest released: balance and available balance 37.50, no hold left
    assert captured == {
        "id": hold["id"],
        "status": "COMPLETED",
        "amount": "-12.50",
        "balance": "37.50",
        "availableBalance": "37.50",
        "authCode": None,
    }
    found, history = _check(client, office, codes[0])
    assert (found["balance"], found["availableBalance"], found["openAuthorizations"]) == (
        "37.50",
        "37.50",
        [],
    )
    assert history == [ISSUED, _row("USE", "COMPLETED", "-12.50", "50.00", "37.50", "SALE-2001")]
    # and the auth code is spent; the other card is untouched
    again = gql(client, CAPTURE, {"authCode": hold["authCode"]}, token=till)
    assert [error["extensions"]["code"] for error in again["errors"]] == ["CONFLICT"]
    untouched, _ = _check(client, office, codes[1])
    assert (untouched["balance"], untouched["availableBalance"]) == ("20.00", "20.00")


def test_authorize_then_cancel_by_the_auth_code(client, sold, till):
    codes, _, office = sold
    # given 30.00 authorized
    hold = _authorize(client, till, codes[0], "-30.00", "SALE-2002")
    # when the till cancels it by its auth code
    cancelled = answered(
        gql(client, CANCEL, {"authCode": hold["authCode"]}, token=till), "giftcardTransCancel"
    )
    # then the hold is released: nothing spent, the whole balance available again
    assert cancelled == {
        "id": hold["id"],
        "status": "CANCELLED",
        "amount": "-30.00",
        "balance": "50.00",
        "availableBalance": "50.00",
        "authCode": None,
    }
    found, history = _check(client, office, codes[0])
    assert (found["balance"], found["availableBalance"], found["openAuthorizations"]) == (
        "50.00",
        "50.00",
        [],
    )
    assert history == [ISSUED, _row("USE", "CANCELLED", "-30.00", "50.00", "50.00", "SALE-2002")]
    # and it can be neither captured nor cancelled again by that code
    for operation in (CAPTURE, CANCEL):
        again = gql(client, operation, {"authCode": hold["authCode"]}, token=till)
        assert [error["extensions"]["code"] for error in again["errors"]] == ["CONFLICT"]
    assert _check(client, office, codes[1])[0]["balance"] == "20.00"
