"""Times and dates at the ends of the calendar: BAD_USER_INPUT naming the field, never INTERNAL."""

from __future__ import annotations

import pytest

from app.enums import CodeType
from tests.conftest import gql

# Inside Python's calendar as written, outside it once converted to UTC.
BEYOND_THE_CALENDAR = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
# Representable in UTC, but within a day of the calendar's ends.
AT_THE_EDGE = ["0001-01-01T23:59:59Z", "9999-12-31T00:00:00Z"]

ADD = 'mutation A($v: DateTime) { giftcardAdd(giftcard: {physicalCode: "EXTREME001", %s: $v}) { id } }'
EDIT = "mutation E($id: ID!, $v: DateTime) { giftcardEdit(giftcard: {id: $id, %s: $v}) { id } }"
LISTING = "query L($v: DateTime) { giftcards(filter: {%s: $v}) { edges { cursor } } }"
HISTORY = "query H($v: DateTime) { giftcardTransactions(filter: {%s: $v}) { edges { cursor } } }"
AUDIT = "query U($v: DateTime) { auditEvents(filter: {%s: $v}) { edges { cursor } } }"
EVERY_TIME_INPUT = [
    pytest.param(operation, field, id=f"{name}.{field}")
    for name, operation, fields in (
        ("giftcardAdd", ADD, ("usableFrom", "expiresAt")),
        ("giftcardEdit", EDIT, ("usableFrom", "expiresAt")),
        ("giftcards", LISTING, ("createdAfter", "createdBefore")),
        ("giftcardTransactions", HISTORY, ("createdAfter", "createdBefore")),
        ("auditEvents", AUDIT, ("occurredAfter", "occurredBefore")),
    )
    for field in fields
]
CODE_DATE = """mutation D($v: Date) {
  giftcardAdd(giftcard: {physicalCode: "EXTREME002", physicalCodeExpiresOn: $v}) {
    id codes { expiresOn } } }"""


@pytest.fixture
def admin(mint):
    return mint(roles=["admin"], sub="back-office")


@pytest.fixture
def card_id(seed):
    return str(seed({CodeType.PHYSICAL: "EXTREME000"}))


@pytest.mark.parametrize(("operation", "field"), EVERY_TIME_INPUT)
def test_times_outside_the_calendar_are_bad_input_naming_the_field(client, admin, card_id, operation, field):
    for value in BEYOND_THE_CALENDAR + AT_THE_EDGE:
        body = gql(client, operation % field, {"id": card_id, "v": value}, token=admin)

        assert [*body["data"].values()] == [None], (value, body)  # the one root field is null
        assert [error["extensions"] for error in body["errors"]] == [
            {"code": "BAD_USER_INPUT", "field": field}
        ]
        assert "0001-01-02 to 9999-12-30" in body["errors"][0]["message"]


def test_the_ends_of_the_accepted_range_are_accepted(client, admin):
    for operation, field in ((LISTING, "createdAfter"), (AUDIT, "occurredBefore")):
        for value in ("0001-01-02T00:00:00Z", "9999-12-30T23:59:59.999999Z"):
            body = gql(client, operation % field, {"v": value}, token=admin)

            assert "errors" not in body, (field, value, body)


def test_a_card_window_up_to_the_end_of_the_range_is_kept(client, admin, card_id):
    body = gql(client, EDIT % "expiresAt", {"id": card_id, "v": "9999-12-30T23:59:59+00:00"}, token=admin)

    assert body["data"]["giftcardEdit"]["id"] == card_id, body


def test_code_expiry_dates_at_the_ends_of_the_calendar(client, admin):
    past = gql(client, CODE_DATE, {"v": "0001-01-01"}, token=admin)
    beyond = gql(client, CODE_DATE, {"v": "10000-01-01"}, token=admin)
    last = gql(client, CODE_DATE, {"v": "9999-12-31"}, token=admin)

    assert [error["extensions"] for error in past["errors"]] == [
        {"code": "BAD_USER_INPUT", "field": "physicalCodeExpiresOn"}
    ]
    assert [error["extensions"]["code"] for error in beyond["errors"]] == ["BAD_USER_INPUT"]
    assert last["data"]["giftcardAdd"]["codes"][0]["expiresOn"] == "9999-12-31", last
