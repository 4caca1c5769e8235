"""Card states: block, unblock, deactivate — every transition, allowed and refused, idempotent."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.enums import CodeType
from tests.conftest import error_codes, gql

STATE = "mutation($id: ID!, $reason: String) {{ {op}(id: $id, reason: $reason) {{ id state }} }}"
OPS = {"block": "giftcardBlock", "unblock": "giftcardUnblock", "deactivate": "giftcardDeactivate"}


@pytest.fixture
def operator(mint):
    return mint(roles=["admin"])


def _do(client, token, op, card_id, reason=None):
    return gql(client, STATE.format(op=OPS[op]), {"id": str(card_id), "reason": reason}, token=token)


def _events(services, card_id):
    with services.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT event, detail, actor FROM giftcard_events WHERE giftcard_id = :id ORDER BY id"),
            {"id": card_id},
        ).all()
    return [tuple(row) for row in rows]


def _set_state(services, card_id, state):
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET state = :s WHERE id = :id"), {"s": state, "id": card_id}
        )


@pytest.mark.parametrize(
    ("start", "op", "end"),
    [
        ("PENDING", "block", "BLOCKED"),
        ("ACTIVE", "block", "BLOCKED"),
        ("BLOCKED", "block", "BLOCKED"),
        ("BLOCKED", "unblock", "PENDING"),
        ("PENDING", "unblock", "PENDING"),
        ("ACTIVE", "unblock", "ACTIVE"),
        ("PENDING", "deactivate", "DEACTIVATED"),
        ("ACTIVE", "deactivate", "DEACTIVATED"),
        ("BLOCKED", "deactivate", "DEACTIVATED"),
        ("DEACTIVATED", "deactivate", "DEACTIVATED"),
    ],
)
def test_allowed_transitions(client, operator, seed, services, start, op, end):
    card_id = seed({CodeType.PHYSICAL: "STATEPHYS001"})
    _set_state(services, card_id, start)
    body = _do(client, operator, op, card_id, reason="test")
    assert body["data"][OPS[op]]["state"] == end
    recorded = _events(services, card_id)
    if start == end:
        assert recorded == []  # a repeat changes nothing and records nothing
    else:
        assert recorded == [
            ({"block": "BLOCKED", "unblock": "UNBLOCKED", "deactivate": "DEACTIVATED"}[op], "test", "tester")
        ]


def test_unblock_returns_a_funded_card_to_active(client, operator, seed, services):
    card_id = seed({CodeType.PHYSICAL: "FUNDEDPHYS01"}, balance=500)
    with services.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO giftcard_transactions (giftcard_id, trans_type, status, amount, balance_after, "
                "created_at) VALUES (:id, 'ADD', 'COMPLETED', 500, 500, CURRENT_TIMESTAMP)"
            ),
            {"id": card_id},
        )
    assert _do(client, operator, "block", card_id)["data"]["giftcardBlock"]["state"] == "BLOCKED"
    assert _do(client, operator, "unblock", card_id)["data"]["giftcardUnblock"]["state"] == "ACTIVE"


@pytest.mark.parametrize("op", ["block", "unblock"])
def test_deactivated_cards_never_come_back(client, operator, seed, services, op):
    card_id = seed({CodeType.PHYSICAL: "DEADPHYS0001"})
    _do(client, operator, "deactivate", card_id)
    body = _do(client, operator, op, card_id)
    assert error_codes(body) == ["CONFLICT"]
    assert "deactivated" in body["errors"][0]["message"]
    body = gql(
        client,
        'mutation($id: ID!) { giftcardEdit(giftcard: {id: $id, note: "x"}) { id } }',
        {"id": str(card_id)},
        token=operator,
    )
    assert error_codes(body) == ["CONFLICT"]
    # the card and its history stay
    found = gql(
        client,
        "query($id: ID!) { giftcard(id: $id) { results { state } } }",
        {"id": str(card_id)},
        token=operator,
    )
    assert found["data"]["giftcard"]["results"] == [{"state": "DEACTIVATED"}]
    assert [event for event, *_ in _events(services, card_id)] == ["DEACTIVATED"]


@pytest.mark.parametrize(
    ("op", "permissions"),
    [
        ("block", ["DeactivateGiftCard"]),
        ("unblock", ["DeactivateGiftCard"]),
        ("deactivate", ["BlockGiftCard"]),
    ],
)
def test_each_change_needs_its_permission(client, mint, seed, op, permissions):
    card_id = seed({CodeType.PHYSICAL: "PERMSTATE001"})
    assert error_codes(_do(client, mint(permissions=permissions), op, card_id)) == ["FORBIDDEN"]
    assert error_codes(_do(client, None, op, card_id)) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(("card_id", "code"), [("424242", "NOT_FOUND"), ("x1", "BAD_USER_INPUT")])
def test_unknown_or_malformed_ids(client, operator, card_id, code):
    assert error_codes(_do(client, operator, "block", card_id)) == [code]


def test_reason_is_bounded(client, operator, seed):
    card_id = seed({CodeType.PHYSICAL: "REASONPHYS01"})
    body = _do(client, operator, "block", card_id, reason="r" * 256)
    assert error_codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "reason"
