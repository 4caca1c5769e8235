"""Refusals in the audit trail: counted in memory and written as one row per subject, operation,
outcome and minute once the minute is over (and when the server stops), so a token refused again
and again cannot flood the table; successes and disclosures stay one row each."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app import http
from app.enums import CodeType
from app.http import create_app
from app.models import AuditEvent
from tests.conftest import error_codes, gql

BLOCK = "mutation B($id: ID!) { giftcardBlock(id: $id) { id state } }"
UNBLOCK = "mutation U($id: ID!) { giftcardUnblock(id: $id) { id state } }"
LOOKUP = "query L($id: ID) { giftcard(id: $id) { results { id codes { codeType isMasked } } } }"
EVENTS = """query E($filter: AuditEventFilter) {
  auditEvents(filter: $filter) { edges { node { action outcome subject count occurredAt } } } }"""

START = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


class Clock:
    """The audit trail's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(services, monkeypatch) -> Clock:
    moved = Clock(START)
    # raising=False: against a trail without a clock, the tests fail on what they check instead
    monkeypatch.setattr(services.audit, "clock", moved, raising=False)
    return moved


@pytest.fixture
def nobody(mint):
    """A valid token that holds no permission at all."""
    return mint(permissions=[], sub="nobody")


@pytest.fixture
def admin(mint):
    return mint(roles=["admin"], sub="admin")


@pytest.fixture
def card(seed):
    return seed({CodeType.PHYSICAL: "REFUSEPHYS0001"})


def _rows(services) -> list[dict]:
    """What the table holds now (nothing held in memory is written first)."""
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    with services.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]


def _counted(services) -> list[tuple]:
    return [(row["subject"], row["action"], row["outcome"], row["count"]) for row in _rows(services)]


def _refuse(client, token, card_id, times: int) -> None:
    for _ in range(times):
        assert error_codes(gql(client, BLOCK, {"id": str(card_id)}, token=token)) == ["FORBIDDEN"]


def test_fifty_refusals_in_a_minute_are_one_row_counting_fifty(client, clock, nobody, admin, card, services):
    # given a token without permissions, refused 50 times within one minute
    _refuse(client, nobody, card, 50)
    # then nothing is written while the minute runs
    assert _rows(services) == []
    # when the minute is over and the counts are flushed
    clock.now += timedelta(minutes=1)
    assert services.audit.flush_refusals() == 1
    # then one row stands for the 50 refusals, stamped with the first of them
    (row,) = _rows(services)
    assert (row["subject"], row["action"], row["outcome"], row["count"], row["giftcard_id"]) == (
        "nobody",
        "giftcardBlock",
        "FORBIDDEN",
        50,
        None,
    )
    assert row["occurred_at"].replace(tzinfo=UTC) == START
    # and the trail shows it with its count
    body = gql(client, EVENTS, {"filter": {"subject": "nobody"}}, token=admin)
    assert [edge["node"]["count"] for edge in body["data"]["auditEvents"]["edges"]] == [50]
    # and a second flush writes nothing more
    assert services.audit.flush_refusals() == 0
    assert len(_rows(services)) == 1


def test_refusals_in_two_minutes_are_two_rows(client, clock, nobody, card, services):
    # given 3 refusals in one minute and 2 in the next
    _refuse(client, nobody, card, 3)
    clock.now += timedelta(minutes=1)
    _refuse(client, nobody, card, 2)
    # then the first minute was written by the first refusal after it, the second is still held
    assert _counted(services) == [("nobody", "giftcardBlock", "FORBIDDEN", 3)]
    clock.now += timedelta(minutes=1)
    services.audit.flush_refusals()
    assert _counted(services) == [
        ("nobody", "giftcardBlock", "FORBIDDEN", 3),
        ("nobody", "giftcardBlock", "FORBIDDEN", 2),
    ]
    minutes = [row["occurred_at"].replace(tzinfo=UTC, second=0) for row in _rows(services)]
    assert minutes == [START.replace(second=0), START.replace(second=0) + timedelta(minutes=1)]


def test_successes_and_disclosures_stay_one_row_each(client, clock, admin, card, seed, services):
    # given an operator who blocks and unblocks a card three times and then sees another card's
    # PERSONAL code in full twice, all within one minute
    personal = seed({CodeType.PERSONAL: "REFUSEPERSONAL000001"}, member_id="M1")
    for _ in range(3):
        assert "errors" not in gql(client, BLOCK, {"id": str(card)}, token=admin)
        assert "errors" not in gql(client, UNBLOCK, {"id": str(card)}, token=admin)
    for _ in range(2):
        assert "errors" not in gql(client, LOOKUP, {"id": str(personal)}, token=admin)
    # then each was written at once, as a row of its own counting 1
    assert _counted(services) == [
        *[("admin", "giftcardBlock", "OK", 1), ("admin", "giftcardUnblock", "OK", 1)] * 3,
        ("admin", "CODE_DISCLOSED", "OK", 1),
        ("admin", "CODE_DISCLOSED", "OK", 1),
    ]
    # and nothing is held back for later
    clock.now += timedelta(minutes=1)
    assert services.audit.flush_refusals(everything=True) == 0


def test_other_subjects_rows_are_unaffected(client, clock, nobody, admin, mint, card, services):
    # given an operator at work, and a token without permissions refused again and again meanwhile
    shop = mint(roles=["storefront"], sub="shop")
    assert "errors" not in gql(client, BLOCK, {"id": str(card)}, token=admin)
    _refuse(client, nobody, card, 20)
    _refuse(client, shop, card, 2)
    assert "errors" not in gql(client, UNBLOCK, {"id": str(card)}, token=admin)
    _refuse(client, nobody, card, 20)
    # when the minute is over
    clock.now += timedelta(minutes=1)
    services.audit.flush_refusals()
    # then the operator's rows are its own, one each, and each refused subject has its own count
    assert _counted(services) == [
        ("admin", "giftcardBlock", "OK", 1),
        ("admin", "giftcardUnblock", "OK", 1),
        ("nobody", "giftcardBlock", "FORBIDDEN", 40),
        ("shop", "giftcardBlock", "FORBIDDEN", 2),
    ]
    assert [row["giftcard_id"] for row in _rows(services)] == [card, card, None, None]


def test_stopping_the_server_writes_the_counts_it_holds(settings, services, clock, nobody, card):
    # given a server that refused a token 7 times in the current minute
    with TestClient(create_app(settings, services)) as client:
        _refuse(client, nobody, card, 7)
        assert _rows(services) == []
    # when it stops (the minute still running), then the count is written
    assert _counted(services) == [("nobody", "giftcardBlock", "FORBIDDEN", 7)]


def test_a_running_server_writes_an_ended_minute_without_another_refusal(
    settings, services, clock, nobody, card, monkeypatch
):
    monkeypatch.setattr(http, "REFUSAL_FLUSH_SECONDS", 0.01)
    with TestClient(create_app(settings, services)) as client:
        # given refusals in a minute that then ends with no further refusal
        _refuse(client, nobody, card, 4)
        clock.now += timedelta(minutes=1)
        # then the server writes them on its own while it keeps running
        deadline = time.monotonic() + 10
        while not _rows(services) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _counted(services) == [("nobody", "giftcardBlock", "FORBIDDEN", 4)]


def test_a_count_keeps_the_client_address_only_when_every_refusal_came_from_it(
    client, clock, nobody, card, services
):
    # given refusals of one token from one address, then (next minute) from two
    _refuse(client, nobody, card, 2)
    clock.now += timedelta(minutes=1)
    _refuse(client, nobody, card, 1)
    with TestClient(create_app(services.settings, services), client=("198.51.100.7", 50000)) as other:
        _refuse(other, nobody, card, 1)
    # then the first row names the address, the second, whose refusals came from two, does not
    assert [(row["count"], row["client_address"]) for row in _rows(services)] == [
        (2, "testclient"),
        (2, None),
    ]
