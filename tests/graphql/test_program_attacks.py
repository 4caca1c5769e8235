"""Attacks on a program's rules: a card issued without a value and funded by its first ADD still gets
a value the program issues (and a program that fixes value still lets it be funded once), and a card
of a program that sets an expiry period cannot be issued to expire sooner than the legal minimum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.graphql.test_program_cards import _card, _issued, _limit, _load


def test_the_first_load_of_a_card_issued_without_value_is_a_value_the_program_issues(client, office, program):
    # given a card of a program issuing $10.00 and $25.00 cards only, issued with no value (PENDING)
    fixed = program(code="FIX", denominations=["10.00", "25.00"])
    card = _issued(client, office, programId=fixed, physicalCode="FIXED0000001")
    assert card["balance"] == "0.00"
    # then activating it with $37.00 is refused as issuing it with $37.00 would be
    assert _limit(_load(client, office, card["id"], "37.00")) == ("LIMIT_EXCEEDED", "denominations")
    ranged = program(code="RNG", minValue="5.00", maxValue="50.00")
    small = _issued(client, office, programId=ranged, physicalCode="RANGE0000001")
    assert _limit(_load(client, office, small["id"], "4.99")) == ("LIMIT_EXCEEDED", "minValue")
    # a value it issues activates it; later loads are not issues
    assert "errors" not in _load(client, office, card["id"], "25.00")
    assert "errors" not in _load(client, office, card["id"], "37.00")


def test_a_card_of_a_program_that_fixes_value_can_be_activated_once(client, office, program):
    # given a card of a program that fixes value, issued with no value
    fixed = program(code="FIX", valueChangesAllowed=False, denominations=["25.00"])
    card = _issued(client, office, programId=fixed, physicalCode="FIXED0000002")
    # then its first load (an issue value) is taken, and the next one refused
    loaded = _load(client, office, card["id"], "25.00")
    assert "errors" not in loaded, loaded
    assert _limit(_load(client, office, card["id"], "25.00")) == ("LIMIT_EXCEEDED", "valueChangesAllowed")


def test_a_program_card_cannot_be_issued_to_expire_before_the_legal_minimum(client, office, program):
    lasting = program(code="LAST", expiry={"kind": "AFTER_ISSUE", "days": 1825})
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = _card(
        client,
        office,
        programId=lasting,
        initialValue="10.00",
        expiresAt=tomorrow,
        physicalCode="LAST00000001",
    )
    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", "expiresAt")
    assert "GIFTCARDS_MIN_EXPIRY_DAYS" in error["message"]
