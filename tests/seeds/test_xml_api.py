"""Coming from the XML API, end to end: a card created under its product with a source id, a
server-generated serial, an active flag and a note; its totals (credit, used, total) after loads and
uses; its history entries with balance before and after, amount, activity, user, note and source
id; who changed the card last. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.program_rules import matches_format
from app.entities import CodeFormat
from tests.conftest import answered, gql
from tests.graphql.conftest import PROGRAM_ADD, PROGRAM_FORMAT

CARD = "id state balance loaded used initialValue sourceId note createdBy updatedBy program { code }"
CREATE = f"""mutation A($card: GiftCardAddInput!) {{ giftcardAdd(giftcard: $card) {{
  {CARD} codes {{ codeType code isMasked }} }} }}"""
EDIT = f"""mutation E($card: GiftCardEditInput!) {{ giftcardEdit(giftcard: $card) {{ {CARD} }} }}"""
READ = f"""query R($id: ID!) {{ giftcard(id: $id) {{ results {{ {CARD} availableBalance }} }} }}"""
TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { balance } }"""
HISTORY = """query H($id: ID!) { giftcardTransactions(filter: {giftcardId: $id}) { edges { node {
  balanceBefore balanceAfter amount transType createdBy note sourceId refNo locationId createdAt } } } }"""
NOTE = "Sold at the counter"


@pytest.fixture
def office(mint):
    return mint(roles=["admin"], sub="office")


@pytest.fixture
def product(client, office) -> str:
    """The XML API's product: the program "GC", whose serials are GC + 13 random + a check character."""
    given = {"code": "GC", "name": "Gift card", "currency": "USD", "codeFormat": PROGRAM_FORMAT}
    return str(
        answered(gql(client, PROGRAM_ADD, {"program": given}, token=office), "giftcardProgramAdd")["id"]
    )


def _create(client, office, product, **given):
    card = {"programId": product, "initialValue": "25.00", "sourceId": "POS-7", "note": NOTE} | given
    return answered(gql(client, CREATE, {"card": card}, token=office), "giftcardAdd")


def _read(client, office, card_id):
    (card,) = answered(gql(client, READ, {"id": card_id}, token=office), "giftcard")["results"]
    return card


def _move(client, token, card_id, trans_type, amount, **given):
    trans = {"giftcardId": card_id, "transType": trans_type, "amount": amount} | given
    return answered(gql(client, TRANS, {"trans": trans}, token=token), "giftcardTransAdd")["balance"]


def _history(client, office, card_id):
    edges = answered(gql(client, HISTORY, {"id": card_id}, token=office), "giftcardTransactions")["edges"]
    return [edge["node"] for edge in edges]


def _card(state, balance, loaded, used, by="office"):
    return {
        "state": state,
        "balance": balance,
        "loaded": loaded,
        "used": used,
        "initialValue": "25.00",
        "sourceId": "POS-7",
        "note": NOTE,
        "createdBy": "office",
        "updatedBy": by,
        "program": {"code": "GC"},
    }


def test_a_card_created_with_a_source_id_a_note_and_a_generated_serial(client, office, product):
    # when the back office creates an active card under the product, giving no code
    card = _create(client, office, product)
    # then it is ACTIVE with its value, source id and note, and a serial in the product's format
    assert {key: value for key, value in card.items() if key not in ("id", "codes")} == _card(
        "ACTIVE", "25.00", "25.00", "0.00"
    )
    ((code_type, serial, masked),) = [tuple(code.values()) for code in card["codes"]]
    assert (code_type, masked) == ("PHYSICAL", False)
    assert matches_format(CodeFormat("GC", 16, True), serial)
    # and the next card gets a serial of its own
    other = _create(client, office, product, sourceId="POS-8", note=None)
    assert other["codes"][0]["code"] != serial
    assert (other["sourceId"], other["note"], other["balance"]) == ("POS-8", None, "25.00")
    # and the first card is as it was created
    assert _read(client, office, card["id"]) == {"id": card["id"], "availableBalance": "25.00"} | _card(
        "ACTIVE", "25.00", "25.00", "0.00"
    )


def test_an_inactive_card_is_created_blocked_until_an_edit_activates_it(client, office, product, mint):
    # when the back office creates a card with the active flag off
    card = _create(client, office, product, enabled=False)
    # then it is BLOCKED, funded, and takes no transaction
    assert {key: value for key, value in card.items() if key not in ("id", "codes")} == _card(
        "BLOCKED", "25.00", "25.00", "0.00"
    )
    refused = gql(
        client,
        TRANS,
        {"trans": {"giftcardId": card["id"], "transType": "USE", "amount": "-1.00"}},
        token=office,
    )
    assert [error["extensions"]["code"] for error in refused["errors"]] == ["CARD_NOT_USABLE"]
    # when a manager sets the active flag
    manager = mint(roles=["admin"], sub="manager")
    edited = answered(
        gql(client, EDIT, {"card": {"id": card["id"], "enabled": True}}, token=manager), "giftcardEdit"
    )
    # then the card is ACTIVE, last changed by the manager, and spends
    assert {key: value for key, value in edited.items() if key != "id"} == _card(
        "ACTIVE", "25.00", "25.00", "0.00", by="manager"
    )
    assert _move(client, office, card["id"], "USE", "-1.00") == "24.00"
    # and the spend leaves the last change's author as it was
    assert _read(client, office, card["id"])["updatedBy"] == "manager"
    assert [row["transType"] for row in _history(client, office, card["id"])] == ["ADD", "USE"]


def test_totals_after_loads_and_uses(client, office, product):
    # given two cards of 25.00
    card, other = _create(client, office, product)["id"], _create(client, office, product)["id"]
    # when the first is loaded twice and used three times, and 5.00 more is only authorized
    balances = [
        _move(client, office, card, "ADD", "10.00"),
        _move(client, office, card, "USE", "-7.50"),
        _move(client, office, card, "ADD", "4.75"),
        _move(client, office, card, "USE", "-2.25"),
        _move(client, office, card, "USE", "-12.00"),
        _move(client, office, card, "USE", "-5.00", authorizeOnly=True),
    ]
    assert balances == ["35.00", "27.50", "32.25", "30.00", "18.00", "18.00"]
    # then credit 39.75, used 21.75, total 18.00 = credit - used; the hold counts in none of them,
    # only in what is available
    totals = _read(client, office, card)
    assert (totals["loaded"], totals["used"], totals["balance"], totals["availableBalance"]) == (
        "39.75",
        "21.75",
        "18.00",
        "13.00",
    )
    # and the other card's totals are its issue alone
    untouched = _read(client, office, other)
    assert (untouched["loaded"], untouched["used"], untouched["balance"]) == ("25.00", "0.00", "25.00")


def _entry(before, after, amount, activity, by="office", note=None, source=None, ref=None, where=None):
    return {
        "balanceBefore": before,
        "balanceAfter": after,
        "amount": amount,
        "transType": activity,
        "createdBy": by,
        "note": note,
        "sourceId": source,
        "refNo": ref,
        "locationId": where,
    }


def test_history_entries_and_who_changed_the_card(client, office, product, mint):
    # given a card of 25.00 issued at the counter
    started = datetime.now(UTC)
    card = _create(client, office, product, locationId="STORE-0042")["id"]
    # when a till spends on a receipt, the office corrects it, and a manager edits the card's note
    till = mint(roles=["admin"], sub="till-3")
    spend = {"sourceId": "POS-7", "refNo": "RCPT-88", "locationId": "STORE-0042", "note": "Lunch"}
    _move(client, till, card, "USE", "-8.40", **spend)
    _move(client, office, card, "ADJUST", "0.40", note="Rounding refund", refNo="RCPT-88")
    manager = mint(roles=["admin"], sub="manager")
    edit = {"id": card, "note": "Checked"}
    assert (
        answered(gql(client, EDIT, {"card": edit}, token=manager), "giftcardEdit")["updatedBy"] == "manager"
    )
    # then each entry has its balance before and after, amount, activity, user, note and source id
    history = _history(client, office, card)
    assert [{key: row[key] for key in row if key != "createdAt"} for row in history] == [
        _entry("0.00", "25.00", "25.00", "ADD", source="POS-7", where="STORE-0042"),
        _entry("25.00", "16.60", "-8.40", "USE", "till-3", "Lunch", "POS-7", "RCPT-88", "STORE-0042"),
        _entry("16.60", "17.00", "0.40", "ADJUST", note="Rounding refund", ref="RCPT-88"),
    ]
    times = [datetime.fromisoformat(row["createdAt"]) for row in history]
    assert started - timedelta(seconds=1) <= times[0] <= times[1] <= times[2] <= datetime.now(UTC)
    # and the card says who changed it last; its totals match the history
    read = _read(client, office, card)
    assert (read["createdBy"], read["updatedBy"], read["note"]) == ("office", "manager", "Checked")
    assert (read["loaded"], read["used"], read["balance"]) == ("25.40", "8.40", "17.00")
