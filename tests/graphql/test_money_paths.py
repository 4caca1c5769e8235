"""The money path end to end: a debit touches one card, amounts and keys at their limits, keyed
captures, the refusals a trusted caller is told, and a transaction's note."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.domain.idempotency import MAX_KEY_LENGTH
from app.domain.money import MAX_MINOR_UNITS, format_amount
from app.enums import CodeType
from tests.conftest import answered, fund, gql
from tests.graphql.conftest import POS

TRANS = """mutation T($trans: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) {
    id giftcardId status amount balance availableBalance note } }"""
CAPTURE = """mutation C($id: ID!, $amount: String, $key: String) {
  giftcardTransCapture(id: $id, amount: $amount, idempotencyKey: $key) {
    id status amount balance availableBalance } }"""
CANCEL = """mutation X($id: ID!, $key: String) {
  giftcardTransCancel(id: $id, idempotencyKey: $key) { id status balance availableBalance } }"""
HISTORY = """query H($filter: GiftCardTransactionFilter) {
  giftcardTransactions(first: 10, filter: $filter) { edges { node { id amount note } } } }"""
CARD = """query Card($id: ID!) { giftcard(id: $id) { results { balance transactions { id note } } } }"""
ADD = """mutation Add($giftcard: GiftCardAddInput!) {
  giftcardAdd(giftcard: $giftcard) { id codes { codeType code } } }"""
LOOKUP = """query L($code: String!) {
  giftcard(code: $code) { results { id codes { codeType code isMasked } } } }"""

CODES = ("MONEYPATH001", "MONEYPATH002", "MONEYPATH003")
STOREFRONT = ["UsePhysicalGiftCardCodes", "GiftCardTransUse"]  # may neither list nor look up


@pytest.fixture
def cards(seed, services):
    """Three cards holding $10.00, $20.00 and $30.00, funded through the ledger."""
    ids = []
    for n, code in enumerate(CODES, start=1):
        card_id = seed({CodeType.PHYSICAL: code})
        fund(services.engine, card_id, 1000 * n)
        ids.append(card_id)
    return ids


def _ok(body, name="giftcardTransAdd"):
    return answered(body, name)


def _refusal(body):
    (error,) = body["errors"]
    assert body["data"] is None or next(iter(body["data"].values())) is None
    return error["extensions"]


def _rows(services):
    """Every card's balance and every ledger row, as the database holds them."""
    with services.engine.connect() as connection:
        balances = dict(connection.execute(text("SELECT id, balance FROM giftcards")).all())
        entries = connection.execute(
            text("SELECT id, giftcard_id, amount, status FROM giftcard_transactions ORDER BY id")
        ).all()
    return balances, [tuple(entry) for entry in entries]


def _verify(services):
    from datetime import UTC, datetime

    from app.store import ledger

    return ledger.verify(services.engine, datetime.now(UTC))


def _debit(client, token, code, amount, **extra):
    trans = {"transType": "USE", "amount": amount, "codeType": "PHYSICAL", "code": code, **extra}
    return gql(client, TRANS, {"trans": trans}, token=token)


# --- one card at a time --------------------------------------------------------------------------


def test_a_debit_changes_only_its_own_card(client, pos, cards, services):
    # given three funded cards
    balances_before, entries_before = _rows(services)

    # when the middle one is debited
    done = _ok(_debit(client, pos, CODES[1], "-2.50"))

    # then its balance and ledger changed by that amount, and nothing else did
    assert (int(done["giftcardId"]), done["balance"]) == (cards[1], "17.50")
    balances_after, entries_after = _rows(services)
    assert balances_after == {**balances_before, cards[1]: 1750}
    assert entries_after[:-1] == entries_before
    assert entries_after[-1][1:] == (cards[1], -250, "COMPLETED")
    assert _verify(services) == (3, [])


def test_a_credit_and_a_capture_change_only_their_own_card(client, pos, cards, services):
    # given three funded cards and a hold on the first
    held = _ok(_debit(client, pos, CODES[0], "-4.00", authorizeOnly=True))
    balances_before, _ = _rows(services)

    # when the third is loaded and the hold on the first is captured
    load = {"transType": "ADD", "amount": "5.00", "codeType": "PHYSICAL", "code": CODES[2]}
    _ok(gql(client, TRANS, {"trans": load}, token=pos))
    _ok(gql(client, CAPTURE, {"id": held["id"]}, token=pos), "giftcardTransCapture")

    # then only those two balances moved, and the ledger agrees
    balances_after, _ = _rows(services)
    assert balances_after == {**balances_before, cards[0]: 600, cards[2]: 3500}
    assert _verify(services) == (3, [])


# --- amounts and keys at their limits ------------------------------------------------------------


def test_an_amount_beyond_the_largest_value_is_bad_user_input(client, admin, cards, services):
    # given a card; when a trusted caller loads one minor unit more than one value may hold
    too_large = format_amount(MAX_MINOR_UNITS + 1, "USD")
    body = gql(
        client,
        TRANS,
        {"trans": {"transType": "ADD", "amount": too_large, "giftcardId": str(cards[0])}},
        token=admin,
    )

    # then the amount is refused as input (not as the balance ceiling), and nothing moved
    assert _refusal(body) == {"code": "BAD_USER_INPUT", "field": "amount"}
    assert _rows(services)[0][cards[0]] == 1000


def test_a_128_character_key_is_accepted_and_replays(client, pos, cards, services):
    key = "k" * MAX_KEY_LENGTH
    trans = {"transType": "USE", "amount": "-1.00", "codeType": "PHYSICAL", "code": CODES[0]}

    first = _ok(gql(client, TRANS, {"trans": trans, "key": key}, token=pos))
    again = _ok(gql(client, TRANS, {"trans": trans, "key": key}, token=pos))

    assert again == first and first["balance"] == "9.00"
    assert _rows(services)[0][cards[0]] == 900


def test_a_129_character_key_is_refused(client, pos, cards, services):
    trans = {"transType": "USE", "amount": "-1.00", "codeType": "PHYSICAL", "code": CODES[0]}

    body = gql(client, TRANS, {"trans": trans, "key": "k" * (MAX_KEY_LENGTH + 1)}, token=pos)

    assert _refusal(body) == {"code": "BAD_USER_INPUT", "field": "idempotencyKey"}
    assert _rows(services)[0][cards[0]] == 1000


# --- keyed captures and cancels ------------------------------------------------------------------


def test_a_keyed_capture_retried_replays_and_captures_once(client, pos, cards, services):
    # given a $4.00 hold captured with a key
    held = _ok(_debit(client, pos, CODES[0], "-4.00", authorizeOnly=True))
    variables = {"id": held["id"], "amount": "-3.00", "key": "capture-1"}
    first = _ok(gql(client, CAPTURE, variables, token=pos), "giftcardTransCapture")

    # when the capture is retried with the same key
    again = _ok(gql(client, CAPTURE, variables, token=pos), "giftcardTransCapture")

    # then the first answer comes back and the card was debited once
    assert again == first
    assert (first["status"], first["amount"], first["balance"]) == ("COMPLETED", "-3.00", "7.00")
    assert _rows(services)[0][cards[0]] == 700
    assert _verify(services) == (3, [])


def test_another_capture_with_a_used_key_is_a_conflict(client, pos, cards, services):
    # given two holds, the first captured with a key
    first = _ok(_debit(client, pos, CODES[0], "-4.00", authorizeOnly=True))
    second = _ok(_debit(client, pos, CODES[1], "-5.00", authorizeOnly=True))
    _ok(gql(client, CAPTURE, {"id": first["id"], "key": "capture-2"}, token=pos), "giftcardTransCapture")

    # when the second is captured with the same key
    body = gql(client, CAPTURE, {"id": second["id"], "key": "capture-2"}, token=pos)

    # then that is a conflict on the key, and the second hold is still open
    assert _refusal(body) == {"code": "CONFLICT", "field": "idempotencyKey"}
    assert _rows(services)[0][cards[1]] == 2000
    done = _ok(gql(client, CAPTURE, {"id": second["id"]}, token=pos), "giftcardTransCapture")
    assert done["balance"] == "15.00"


def test_a_keyed_cancel_retried_replays(client, pos, cards, services):
    held = _ok(_debit(client, pos, CODES[0], "-4.00", authorizeOnly=True))
    first = _ok(gql(client, CANCEL, {"id": held["id"], "key": "cancel-1"}, token=pos), "giftcardTransCancel")

    again = _ok(gql(client, CANCEL, {"id": held["id"], "key": "cancel-1"}, token=pos), "giftcardTransCancel")

    assert again == first
    assert (first["status"], first["balance"], first["availableBalance"]) == ("CANCELLED", "10.00", "10.00")


# --- refusals a trusted caller is told, and an untrusted one is not --------------------------------


def test_a_pin_sent_to_a_code_without_one_is_refused_by_name(client, admin, cards, services):
    # given a code without a PIN; when a caller that may list cards sends a PIN with it
    body = _debit(client, admin, CODES[0], "-1.00", pin="1234")

    # then the card is not usable and the field says why; nothing is debited
    assert _refusal(body) == {"code": "CARD_NOT_USABLE", "field": "pin"}
    assert body["errors"][0]["message"] == "pin: this code has no PIN"
    assert _rows(services)[0][cards[0]] == 1000


@pytest.mark.parametrize("permissions", [STOREFRONT, POS], ids=["storefront", "pos"])
def test_a_pin_sent_to_a_code_without_one_tells_an_untrusted_caller_nothing(
    client, mint, cards, services, permissions
):
    blind = mint(permissions=permissions, sub="kiosk")

    with_pin = _debit(client, blind, CODES[0], "-1.00", pin="1234")
    unknown = _debit(client, blind, "NOSUCHCODE01", "-1.00", pin="1234")

    assert _refusal(with_pin) == _refusal(unknown) == {"code": "CARD_NOT_USABLE"}
    assert with_pin["errors"][0]["message"] == unknown["errors"][0]["message"]
    assert _rows(services)[0][cards[0]] == 1000


def test_a_missing_card_id_is_not_found(client, admin, cards):
    body = gql(
        client,
        TRANS,
        {"trans": {"transType": "ADD", "amount": "1.00", "giftcardId": str(cards[-1] + 1000)}},
        token=admin,
    )

    assert _refusal(body) == {"code": "NOT_FOUND", "field": "giftcardId"}
    assert body["errors"][0]["message"] == "giftcardId: no such card"


# --- the note ------------------------------------------------------------------------------------


def test_a_transaction_note_is_stored_and_shown_in_history(client, admin, cards):
    # given a debit with a note of two lines
    note = "till 4: returned scarf\nreceipt 8812"
    done = _ok(
        gql(
            client,
            TRANS,
            {"trans": {"transType": "USE", "amount": "-1.00", "note": note, "giftcardId": str(cards[0])}},
            token=admin,
        )
    )
    assert done["note"] == note

    # then the history and the card's latest transactions show it
    history = gql(client, HISTORY, {"filter": {"giftcardId": str(cards[0])}}, token=admin)
    notes = {
        edge["node"]["id"]: edge["node"]["note"] for edge in history["data"]["giftcardTransactions"]["edges"]
    }
    assert notes[done["id"]] == note
    card = gql(client, CARD, {"id": str(cards[0])}, token=admin)["data"]["giftcard"]["results"][0]
    assert {row["id"]: row["note"] for row in card["transactions"]}[done["id"]] == note


# --- codes and PINs at their limits --------------------------------------------------------------


def test_a_four_character_code_works_and_three_are_refused(client, mint, services):
    creator = mint(permissions=["CreateGiftCard"])
    made = gql(client, ADD, {"giftcard": {"physicalCode": "ab-12"}}, token=creator)
    assert made["data"]["giftcardAdd"]["codes"] == [{"codeType": "PHYSICAL", "code": "AB12"}]
    card_id = int(made["data"]["giftcardAdd"]["id"])
    fund(services.engine, card_id, 500)

    spent = _debit(client, mint(permissions=POS), "AB12", "-1.00")
    assert _ok(spent)["balance"] == "4.00"

    refused = gql(client, ADD, {"giftcard": {"physicalCode": "AB1"}}, token=creator)
    assert _refusal(refused) == {"code": "BAD_USER_INPUT", "field": "physicalCode"}


def test_a_twelve_digit_pin_works_and_thirteen_are_refused(client, mint, services):
    creator, pos = mint(permissions=["CreateGiftCard"]), mint(permissions=POS)
    pin = "123456789012"
    made = gql(client, ADD, {"giftcard": {"physicalCode": "PINEDGE00001", "physicalPin": pin}}, token=creator)
    card_id = int(made["data"]["giftcardAdd"]["id"])
    fund(services.engine, card_id, 500)

    assert _ok(_debit(client, pos, "PINEDGE00001", "-1.00", pin=pin))["balance"] == "4.00"
    assert _refusal(_debit(client, pos, "PINEDGE00001", "-1.00", pin=pin + "3")) == {
        "code": "BAD_USER_INPUT",
        "field": "pin",
    }
    longer = gql(
        client, ADD, {"giftcard": {"physicalCode": "PINEDGE00002", "physicalPin": pin + "3"}}, token=creator
    )
    assert _refusal(longer) == {"code": "BAD_USER_INPUT", "field": "physicalPin"}


@pytest.mark.parametrize(
    ("code", "shown"),
    [("ELEVENCHARS", "*" * 11), ("TWELVECHARSX", "********ARSX")],
    ids=["11 masked whole", "12 shows last four"],
)
def test_a_personal_code_is_masked_whole_below_twelve_characters(client, mint, seed, code, shown):
    seed({CodeType.PERSONAL: code})

    body = gql(
        client,
        LOOKUP,
        {"code": code},
        token=mint(permissions=["FindGiftCardByCode", "UseCryptoGiftCardCodes"]),
    )

    (card,) = body["data"]["giftcard"]["results"]
    assert card["codes"] == [{"codeType": "PERSONAL", "code": shown, "isMasked": True}]
