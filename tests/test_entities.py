"""Entities as stored answers: what `encode` writes, `decode` reads back as the same shape."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime

import pytest

from app.domain.idempotency import encode
from app.entities import Card, Reservation, ShownCode, Transaction, decode
from app.enums import CardState, CodeType, TransStatus, TransType

NOW = datetime(2026, 12, 6, 10, 30, 15, 123456, tzinfo=UTC)
CARD = Card(
    7,
    "M1",
    "EUR",
    CardState.ACTIVE,
    1250,
    NOW,
    NOW,
    "office",
    None,
    NOW,
    "note",
    "src",
    "R-1",
    (ShownCode(70, CodeType.PERSONAL, "ABCD1234EFGH5678JKLM", date(2030, 1, 2), False),),
)
TRANSACTION = Transaction(
    9,
    7,
    TransType.USE,
    TransStatus.AUTHORIZED,
    -150,
    "EUR",
    1250,
    1100,
    1250,
    1250,
    -150,
    NOW,
    False,
    None,
    None,
    "n",
    NOW,
    None,
)
RESERVATION = Reservation(3, "batch-1", "printer", False, 2, NOW, None, ("CODE1", "CODE2"), 0)


@pytest.mark.parametrize(
    ("value", "shape"),
    [(CARD, Card[ShownCode]), (TRANSACTION, Transaction), (RESERVATION, Reservation[str])],
    ids=["card", "transaction", "reservation"],
)
def test_a_stored_answer_decodes_to_an_equal_value_of_its_shape(value, shape):
    decoded = decode(shape, json.loads(encode(value)))
    assert decoded == value
    assert type(decoded) is type(value)


def test_decoding_keeps_enums_aware_times_dates_and_tuples():
    card = decode(Card[ShownCode], json.loads(encode(CARD)))
    assert type(card.state) is CardState and type(card.codes[0].code_type) is CodeType
    assert card.created_at.utcoffset() is not None and card.created_at == NOW
    assert card.codes[0].expires_on == date(2030, 1, 2) and isinstance(card.codes, tuple)
    assert isinstance(card.codes[0], ShownCode)


def test_the_card_names_its_id_as_transactions_do():
    assert CARD.giftcard_id == CARD.id == 7


def test_a_transaction_stored_before_locations_decodes_without_one():
    # given an answer sealed before transactions had a location_id
    stored = json.loads(encode(dataclasses.replace(TRANSACTION, location_id="SHOP-1")))
    assert stored.pop("location_id") == "SHOP-1"
    # then it decodes, with no location, as the same transaction
    assert decode(Transaction, stored) == TRANSACTION
    assert decode(Transaction, stored).location_id is None
