"""Cards that follow a program: issued in its currency with a value it allows, a code generated in
its format when none is given, its expiry, its ceiling and daily load limit (16 loads racing it),
loads refused after issue when it fixes value, and credits authorized and captured under the same
rules. Refusals are LIMIT_EXCEEDED naming the rule."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.domain.addressing import UNUSABLE
from app.domain.program_rules import matches_format
from app.entities import CodeFormat
from tests.conftest import gql
from tests.test_concurrency import in_parallel, scalar

CARD_ADD = """mutation A($card: GiftCardAddInput!, $key: String) {
  giftcardAdd(giftcard: $card, idempotencyKey: $key) {
    id currency balance initialValue expiresAt loaded used codes { codeType code isMasked }
    program { code } } }"""
TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id balance } }"""
CAPTURE = """mutation C($id: ID!, $amount: String) {
  giftcardTransCapture(id: $id, amount: $amount) { status amount balance } }"""
CARD = """query C($id: ID!) { giftcard(id: $id) { results { balance expiresAt loaded used } } }"""


def _card(client, office, key: str | None = None, **given) -> dict:
    return gql(client, CARD_ADD, {"card": given, "key": key}, token=office)


def _issued(client, office, **given) -> dict:
    body = _card(client, office, **given)
    assert "errors" not in body, body
    return body["data"]["giftcardAdd"]


def _load(client, office, card_id: str, amount: str, kind: str = "ADD", **extra) -> dict:
    trans = {"giftcardId": card_id, "transType": kind, "amount": amount, **extra}
    return gql(client, TRANS, {"trans": trans}, token=office)


def _authorized(client, token, amount: str, **address) -> str:
    """The id of a credit of ``amount`` authorized on the card that ``address`` names."""
    trans = {"transType": "ADD", "amount": amount, "authorizeOnly": True, **address}
    body = gql(client, TRANS, {"trans": trans}, token=token)
    assert "errors" not in body, body
    return str(body["data"]["giftcardTransAdd"]["id"])


def _limit(body: dict) -> tuple[str, str | None]:
    (error,) = body["errors"]
    return error["extensions"]["code"], error["extensions"].get("limit")


def test_a_card_given_no_code_gets_one_in_its_default_programs_format(client, office, program):
    # without a program a card needs a code
    refused = _card(client, office, initialValue="25.00")
    assert (
        refused["errors"][0]["extensions"] | {"code": "BAD_USER_INPUT", "field": "giftcard"}
        == refused["errors"][0]["extensions"]
    )
    program(isDefault=True)
    card = _issued(client, office, initialValue="25.00")
    ((code_type, code, masked),) = [tuple(code.values()) for code in card["codes"]]
    assert (code_type, masked, card["program"], card["currency"]) == (
        "PHYSICAL",
        False,
        {"code": "GC"},
        "USD",
    )
    assert matches_format(CodeFormat("GC", 16, True), code)
    # each card gets a code of its own
    other = _issued(client, office)
    assert other["codes"][0]["code"] != code


def test_a_card_takes_its_programs_currency_values_and_expiry(client, office, program):
    fixed = program(
        code="FIX", denominations=["10.00", "25.00"], expiry={"kind": "AFTER_ISSUE", "days": 1825}
    )
    card = _issued(client, office, programId=fixed, initialValue="25.00", physicalCode="FIXED0000001")
    expires = datetime.fromisoformat(card["expiresAt"])
    assert timedelta(days=1824) < expires - datetime.now(UTC) <= timedelta(days=1825)
    assert (card["initialValue"], card["loaded"], card["used"]) == ("25.00", "25.00", "0.00")
    refused = _card(client, office, programId=fixed, initialValue="20.00", physicalCode="FIXED0000002")
    assert _limit(refused) == ("LIMIT_EXCEEDED", "denominations")
    assert refused["errors"][0]["extensions"]["field"] == "initialValue"
    wrong = _card(client, office, programId=fixed, currency="EUR", physicalCode="FIXED0000003")
    assert (
        wrong["errors"][0]["extensions"] | {"code": "BAD_USER_INPUT", "field": "currency"}
        == wrong["errors"][0]["extensions"]
    )
    ranged = program(code="RNG", minValue="5.00", maxValue="50.00")
    assert _limit(
        _card(client, office, programId=ranged, initialValue="4.99", physicalCode="RANGE0000001")
    ) == (
        "LIMIT_EXCEEDED",
        "minValue",
    )
    assert _limit(
        _card(client, office, programId=ranged, initialValue="50.01", physicalCode="RANGE0000002")
    ) == (
        "LIMIT_EXCEEDED",
        "maxValue",
    )
    missing = _card(client, office, programId="123456789", physicalCode="RANGE0000003")
    assert missing["errors"][0]["extensions"]["field"] == "programId"


def test_a_program_that_fixes_value_refuses_loads_but_not_spending(client, office, program):
    fixed = program(code="FIX", valueChangesAllowed=False)
    card = _issued(client, office, programId=fixed, initialValue="25.00", physicalCode="FIXED0000001")
    assert _limit(_load(client, office, card["id"], "5.00")) == ("LIMIT_EXCEEDED", "valueChangesAllowed")
    spent = _load(client, office, card["id"], "-5.00", kind="USE")
    assert spent["data"]["giftcardTransAdd"]["balance"] == "20.00"
    totals = gql(client, CARD, {"id": card["id"]}, token=office)["data"]["giftcard"]["results"][0]
    assert (totals["balance"], totals["loaded"], totals["used"]) == ("20.00", "25.00", "5.00")


def test_the_programs_ceiling_holds_below_the_servers(client, office, program):
    # (a value over both the ceiling and the most the program issues is refused for the ceiling)
    capped = program(code="CAP", maxBalance="100.00", maxValue="95.00")
    over = _card(client, office, programId=capped, initialValue="100.01", physicalCode="CAPPED000001")
    assert _limit(over) == ("LIMIT_EXCEEDED", "maxBalance")
    card = _issued(client, office, programId=capped, initialValue="90.00", physicalCode="CAPPED000002")
    loaded = _load(client, office, card["id"], "10.01")
    assert _limit(loaded) == ("LIMIT_EXCEEDED", "maxBalance")
    # nor is a credit authorized that could never be captured within it
    held = _load(client, office, card["id"], "10.01", authorizeOnly=True)
    assert _limit(held) == ("LIMIT_EXCEEDED", "maxBalance")
    # each refusal names the program's ceiling, not the server's
    assert [body["errors"][0]["message"] for body in (over, loaded, held)] == [
        "initialValue: a card may hold at most 100.00 USD",
        "amount: a card may hold at most 100.00 USD",
        "amount: a card may hold at most 100.00 USD",
    ]
    assert "errors" not in _load(client, office, card["id"], "10.00")


def test_a_load_to_exactly_the_ceiling_past_the_daily_limit_is_refused_for_the_daily_limit(
    client, office, program
):
    # given a card of a program that holds at most $100.00 and loads at most $60.00 a day, issued with $50.00
    capped = program(code="CAP", maxBalance="100.00", maxDailyLoad="60.00")
    card = _issued(client, office, programId=capped, initialValue="50.00", physicalCode="CAPPED000003")
    # when $50.00 more is loaded: the ceiling exactly, but $100.00 loaded today
    refused = _load(client, office, card["id"], "50.00")
    # then it is the daily limit that refuses it
    assert _limit(refused) == ("LIMIT_EXCEEDED", "maxDailyLoad")
    assert refused["errors"][0]["extensions"]["field"] == "amount"


def test_a_value_issued_past_the_daily_limit_is_refused_naming_the_initial_value(client, office, program):
    daily = program(code="DAY", maxDailyLoad="50.00")
    refused = _card(client, office, programId=daily, initialValue="50.01", physicalCode="DAILY0000004")
    assert _limit(refused) == ("LIMIT_EXCEEDED", "maxDailyLoad")
    assert refused["errors"][0]["extensions"]["field"] == "initialValue"


def test_a_credit_held_on_a_card_never_funded_is_captured_only_as_a_value_its_program_issues(
    client, office, program, mint
):
    # given a card of a program that issues $10.00 and $25.00 cards, added without value, and $25.00
    # authorized onto it by the back office and by a kiosk that may load by code but not look codes up
    fixed = program(code="FIX", denominations=["10.00", "25.00"])
    card = _issued(client, office, programId=fixed, physicalCode="FIXED0000001")
    kiosk = mint(permissions=["UsePhysicalGiftCardCodes", "GiftCardTransAdd"], sub="kiosk")
    by_office = _authorized(client, office, "25.00", giftcardId=card["id"])
    by_kiosk = _authorized(client, kiosk, "25.00", codeType="PHYSICAL", code="FIXED0000001")

    # when each captures $20.00 of it: the card's first load, so its issue
    told = gql(client, CAPTURE, {"id": by_office, "amount": "20.00"}, token=office)
    hidden = gql(client, CAPTURE, {"id": by_kiosk, "amount": "20.00"}, token=kiosk)

    # then the back office is told the program's rule, the kiosk gets the uniform refusal
    assert _limit(told) == ("LIMIT_EXCEEDED", "denominations")
    (error,) = hidden["errors"]
    assert (error["extensions"]["code"], error["message"]) == ("CARD_NOT_USABLE", UNUSABLE)
    # and the whole $25.00, a value the program issues, is captured
    done = gql(client, CAPTURE, {"id": by_office}, token=office)["data"]["giftcardTransCapture"]
    assert (done["status"], done["amount"], done["balance"]) == ("COMPLETED", "25.00", "25.00")


def test_an_expiry_after_activity_moves_with_each_transaction(client, office, program, services):
    lapsing = program(code="ACT", expiry={"kind": "AFTER_ACTIVITY", "days": 2000})
    card = _issued(client, office, programId=lapsing, initialValue="10.00", physicalCode="ACTIVE000001")
    with services.engine.begin() as connection:  # as if issued long ago
        connection.execute(
            text("UPDATE giftcards SET expires_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC) + timedelta(days=3), "id": int(card["id"])},
        )
    _load(client, office, card["id"], "-1.00", kind="USE")
    moved = gql(client, CARD, {"id": card["id"]}, token=office)["data"]["giftcard"]["results"][0]
    assert datetime.fromisoformat(moved["expiresAt"]) - datetime.now(UTC) > timedelta(days=1999)


def test_loads_stop_at_the_daily_limit_and_the_initial_value_counts(client, office, program, services):
    daily = program(code="DAY", maxDailyLoad="100.00")
    card = _issued(client, office, programId=daily, initialValue="60.00", physicalCode="DAILY0000001")
    before = datetime.now(UTC).date()
    assert "errors" not in _load(client, office, card["id"], "40.00")
    # the day's loads are counted for the day (UTC) they were made on
    with services.engine.connect() as connection:
        day, loaded_today = connection.execute(
            text("SELECT loaded_day, loaded_today FROM giftcards WHERE id = :id"), {"id": int(card["id"])}
        ).one()
    days = {before.isoformat(), datetime.now(UTC).date().isoformat()}  # two, across midnight
    assert (str(day) in days, loaded_today) == (True, 10_000)
    assert _limit(_load(client, office, card["id"], "0.01")) == ("LIMIT_EXCEEDED", "maxDailyLoad")
    # spending and corrections do not count as loads
    assert "errors" not in _load(client, office, card["id"], "-50.00", kind="USE")
    assert "errors" not in _load(client, office, card["id"], "5.00", kind="ADJUST")


def test_a_captured_credit_counts_as_a_load_and_stops_at_the_daily_limit(client, office, program, services):
    # given a card whose program loads at most $100.00 a day, and two credits of $60.00 authorized
    daily = program(code="DAY", maxDailyLoad="100.00")
    card = _issued(client, office, programId=daily, physicalCode="DAILY0000003")
    first, second = (_authorized(client, office, "60.00", giftcardId=card["id"]) for _ in range(2))

    # when both are captured, then the first loads the card and the second would pass the day's limit
    done = gql(client, CAPTURE, {"id": first}, token=office)["data"]["giftcardTransCapture"]
    assert (done["status"], done["balance"]) == ("COMPLETED", "60.00")
    assert _limit(gql(client, CAPTURE, {"id": second}, token=office)) == ("LIMIT_EXCEEDED", "maxDailyLoad")
    with services.engine.connect() as connection:
        balance, loaded_today = connection.execute(
            text("SELECT balance, loaded_today FROM giftcards WHERE id = :id"), {"id": int(card["id"])}
        ).one()
    assert (balance, loaded_today) == (6_000, 6_000)


def test_sixteen_loads_racing_the_daily_limit_pass_it_none(client, office, program, services):
    # given a card whose program loads at most $100.00 a day, and 16 loads of $10.00 at once
    daily = program(code="DAY", maxDailyLoad="100.00")
    card = _issued(client, office, programId=daily, physicalCode="DAILY0000002")
    answers = in_parallel(16, lambda _: _load(client, office, card["id"], "10.00"))
    # then exactly ten went through and six were refused for the daily limit
    passed = [answer for answer in answers if "errors" not in answer]
    assert len(passed) == 10
    assert {_limit(answer) for answer in answers if "errors" in answer} == {
        ("LIMIT_EXCEEDED", "maxDailyLoad")
    }
    with services.engine.connect() as connection:
        balance, loaded_today = connection.execute(
            text("SELECT balance, loaded_today FROM giftcards WHERE id = :id"), {"id": int(card["id"])}
        ).one()
        rows = connection.execute(
            text("SELECT count(*) FROM giftcard_transactions WHERE giftcard_id = :id"),
            {"id": int(card["id"])},
        ).scalar_one()
    assert (balance, loaded_today, rows) == (10_000, 10_000, 10)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_load_waits_for_an_edit_of_its_program_and_follows_the_edited_rules(
    client, office, program, services
):
    # given a card of a program that holds at most $100.00, issued with $10.00
    capped = program(code="CAP", maxBalance="100.00")
    card = _issued(client, office, programId=capped, initialValue="10.00", physicalCode="CAPPED000004")
    # when its ceiling is lowered to $20.00 by a transaction still open while $50.00 is loaded
    with services.engine.connect() as editor, ThreadPoolExecutor(max_workers=1) as pool:
        editor.execute(text("UPDATE programs SET max_balance = 2000 WHERE id = :id"), {"id": int(capped)})
        loading = pool.submit(_load, client, office, card["id"], "50.00")
        time.sleep(0.5)
        waited = not loading.done()
        editor.commit()
        answer = loading.result(timeout=30)
    # then the load waited for the edit (the program is read share-locked) and kept to the new ceiling
    assert waited
    assert _limit(answer) == ("LIMIT_EXCEEDED", "maxBalance")
    assert answer["errors"][0]["message"] == "amount: a card may hold at most 20.00 USD"
    assert (
        scalar(services.engine, "SELECT balance FROM giftcards WHERE id = :id", id=int(card["id"])) == 1_000
    )
