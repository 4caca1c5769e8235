"""Ledger rules at the edges: holds end with the card's window, any first credit activates a card,
lapsed holds show as EXPIRED, and deactivation releases every hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import error_codes, fund, gql

CODE = "LEDGEREDGE01"
TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) {
  id status holdExpiresAt balance availableBalance } }"""
HISTORY = """query H($f: GiftCardTransactionFilter) { giftcardTransactions(filter: $f) {
  edges { node { id status } } } }"""
CARD = """query C($id: ID!) { giftcard(id: $id) { results { id state balance availableBalance } } }"""
DEACTIVATE = """mutation D($id: ID!) { giftcardDeactivate(id: $id) { id state } }"""


@pytest.fixture
def admin(mint):
    return mint(roles=["admin"])


def _by_id(card_id: int, trans_type: str, amount: str, **more) -> dict:
    return {"trans": {"giftcardId": str(card_id), "transType": trans_type, "amount": amount, **more}}


def _scalar(services, sql: str, **params):
    with services.engine.connect() as connection:
        return connection.execute(text(sql), params).scalar_one()


def test_a_hold_ends_no_later_than_the_card(client, admin, seed, services):
    # given a funded card whose window closes in an hour, and one without an end beside it
    card_id, other_id = seed({CodeType.PHYSICAL: CODE}), seed({CodeType.PHYSICAL: "LEDGEREDGE02"})
    for card in (card_id, other_id):
        fund(services.engine, card, 1000)
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET expires_at = :e WHERE id = :id"), {"e": ends, "id": card_id}
        )
    # when a debit is authorized on each
    held = gql(client, TRANS, _by_id(card_id, "USE", "-1.00", authorizeOnly=True), token=admin)
    free = gql(client, TRANS, _by_id(other_id, "USE", "-1.00", authorizeOnly=True), token=admin)
    # then the hold on the first ends with the card, and says so; the other keeps the hold period
    assert datetime.fromisoformat(held["data"]["giftcardTransAdd"]["holdExpiresAt"]) == ends
    other_end = datetime.fromisoformat(free["data"]["giftcardTransAdd"]["holdExpiresAt"])
    assert other_end > datetime.now(UTC) + timedelta(days=6)


@pytest.mark.parametrize("trans_type", ["ADD", "IMPORT", "ADJUST", "EXTERNAL"])
def test_the_first_completed_credit_of_any_type_activates_a_card(client, admin, seed, services, trans_type):
    card_id = seed({CodeType.PHYSICAL: CODE})
    untouched = seed({CodeType.PHYSICAL: "LEDGEREDGE03"})
    assert _scalar(services, "SELECT state FROM giftcards WHERE id = :id", id=card_id) == "PENDING"
    body = gql(client, TRANS, _by_id(card_id, trans_type, "5.00"), token=admin)
    assert error_codes(body) == []
    assert _scalar(services, "SELECT state FROM giftcards WHERE id = :id", id=card_id) == "ACTIVE"
    assert _scalar(services, "SELECT state FROM giftcards WHERE id = :id", id=untouched) == "PENDING"


def test_an_authorized_credit_does_not_activate_until_captured(client, admin, seed, services):
    card_id = seed({CodeType.PHYSICAL: CODE})
    gql(client, TRANS, _by_id(card_id, "IMPORT", "5.00", authorizeOnly=True), token=admin)
    assert _scalar(services, "SELECT state FROM giftcards WHERE id = :id", id=card_id) == "PENDING"


def test_a_lapsed_hold_shows_as_expired(client, admin, seed, services):
    # given two holds on a card, one of which has lapsed
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 1000)
    lapsed = gql(client, TRANS, _by_id(card_id, "USE", "-1.00", authorizeOnly=True), token=admin)
    running = gql(client, TRANS, _by_id(card_id, "USE", "-2.00", authorizeOnly=True), token=admin)
    lapsed_id = lapsed["data"]["giftcardTransAdd"]["id"]
    running_id = running["data"]["giftcardTransAdd"]["id"]
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcard_transactions SET hold_expires_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(seconds=1), "id": int(lapsed_id)},
        )

    # then the history shows it EXPIRED, the other AUTHORIZED, and each status filter finds its own
    def statuses(**conditions):
        body = gql(client, HISTORY, {"f": {"giftcardId": str(card_id), **conditions}}, token=admin)
        edges = body["data"]["giftcardTransactions"]["edges"]
        return {edge["node"]["id"]: edge["node"]["status"] for edge in edges}

    everything = statuses()
    assert everything[lapsed_id] == "EXPIRED" and everything[running_id] == "AUTHORIZED"
    assert statuses(status="EXPIRED") == {lapsed_id: "EXPIRED"}
    assert statuses(status="AUTHORIZED") == {running_id: "AUTHORIZED"}
    # and the stored status is unchanged (a lapsed hold can still be cancelled)
    assert (
        _scalar(services, "SELECT status FROM giftcard_transactions WHERE id = :id", id=int(lapsed_id))
        == "AUTHORIZED"
    )


def test_deactivating_a_card_cancels_its_open_holds(client, admin, seed, services):
    # given a card with two open holds, and another card with a hold of its own
    card_id, other_id = seed({CodeType.PHYSICAL: CODE}), seed({CodeType.PHYSICAL: "LEDGEREDGE04"})
    for card in (card_id, other_id):
        fund(services.engine, card, 1000)
        gql(client, TRANS, _by_id(card, "USE", "-1.00", authorizeOnly=True), token=admin)
    gql(client, TRANS, _by_id(card_id, "USE", "-3.00", authorizeOnly=True), token=admin)
    # when the card is deactivated
    assert error_codes(gql(client, DEACTIVATE, {"id": str(card_id)}, token=admin)) == []
    # then its holds are cancelled and recorded, and its available balance is its balance
    card = gql(client, CARD, {"id": str(card_id)}, token=admin)["data"]["giftcard"]["results"][0]
    assert card["balance"] == card["availableBalance"] == "10.00"
    assert (
        _scalar(
            services,
            "SELECT COUNT(*) FROM giftcard_transactions WHERE giftcard_id = :id AND status = 'AUTHORIZED'",
            id=card_id,
        )
        == 0
    )
    assert (
        _scalar(
            services,
            "SELECT detail FROM giftcard_events WHERE giftcard_id = :id AND event = 'HOLDS_CANCELLED'",
            id=card_id,
        )
        == "2"
    )
    # and the other card keeps its hold
    other = gql(client, CARD, {"id": str(other_id)}, token=admin)["data"]["giftcard"]["results"][0]
    assert other["availableBalance"] == "9.00"
