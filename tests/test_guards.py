"""Guards against a leaked front-end token: code attempt limits, PIN lockout, uniform refusals."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from app.config import Settings
from app.enums import CodeType
from app.errors import ConfigurationError
from app.http import create_app
from app.services import build_services
from tests.conftest import error_codes, fund, gql, make_settings

LOOKUP = "query L($c: String!) { giftcard(code: $c) { results { id balance } } }"
TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id balance } }"""
EDIT = "mutation E($g: GiftCardEditInput!) { giftcardEdit(giftcard: $g) { id } }"
HISTORY = """query H($c: String!) { giftcardTransactions(filter: {code: $c, codeType: PHYSICAL}) {
  edges { node { id } } } }"""
CODE, PIN = "GUARDPHYS0001", "2468"
REDIS = "redis://127.0.0.1:6379/0"


def _unknown(n: int) -> str:
    return f"NOSUCHCODE{n:04d}"


@pytest.fixture
def storefront(mint):
    return mint(roles=["storefront"], sub="shop")


@pytest.fixture
def pos(mint):
    return mint(roles=["pos"], sub="till")


@pytest.fixture
def admin(mint):
    return mint(roles=["admin"], sub="ops")


@pytest.fixture
def card(seed, services):
    """A card with $10.00 and a PHYSICAL code with a PIN."""
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    return card_id


def _spend(client, token, pin=PIN, amount="-0.01"):
    trans = {"transType": "USE", "amount": amount, "codeType": "PHYSICAL", "code": CODE, "pin": pin}
    return gql(client, TRANS, {"trans": trans}, token=token)


# --- code attempt limits ---------------------------------------------------------------------------


@pytest.mark.settings(code_attempt_limits="3/minute")
def test_lookups_over_the_limit_are_refused_valid_codes_included(client, storefront, card):
    for n in range(3):
        assert gql(client, LOOKUP, {"c": _unknown(n)}, token=storefront)["data"]["giftcard"]["results"] == []
    body = gql(client, LOOKUP, {"c": CODE}, token=storefront)
    assert error_codes(body) == ["RATE_LIMITED"]
    assert body["data"] == {"giftcard": None}
    assert 1 <= body["errors"][0]["extensions"]["retryAfter"] <= 60
    assert CODE not in str(body)


def _aliased(count: int) -> str:
    return "query { " + " ".join(
        f'a{n}: giftcard(code: "{_unknown(n)}") {{ limitedByPermission }}' for n in range(count)) + " }"


@pytest.mark.settings(code_attempt_limits="3/minute")
def test_aliases_count_one_by_one(client, storefront, card):
    # three aliases spend the three attempts …
    body = gql(client, _aliased(3), token=storefront)
    assert error_codes(body) == [] and len(body["data"]) == 3
    # … so the next single lookup is over the limit
    assert error_codes(gql(client, LOOKUP, {"c": CODE}, token=storefront)) == ["RATE_LIMITED"]


@pytest.mark.settings(code_attempt_limits="3/minute")
def test_a_document_over_the_limit_answers_only_the_attempts_within_it(client, storefront, card):
    body = gql(client, _aliased(5), token=storefront)
    # the first three fields spend the three attempts; the fourth and fifth are refused, each
    # null with its own error (root fields are nullable: partial results)
    assert body["data"] == {"a0": {"limitedByPermission": False}, "a1": {"limitedByPermission": False},
                            "a2": {"limitedByPermission": False}, "a3": None, "a4": None}
    assert sorted((error["path"], error["extensions"]["code"]) for error in body["errors"]) == [
        (["a3"], "RATE_LIMITED"), (["a4"], "RATE_LIMITED")]


@pytest.mark.settings(code_attempt_limits="3/minute")
def test_aliases_inside_a_fragment_spread_twice_count_each_time(client, storefront, card):
    document = """query { ...F ...F }
      fragment F on Query { a: giftcard(code: "NOSUCHCODE0001") { limitedByPermission }
                            b: giftcard(code: "NOSUCHCODE0002") { limitedByPermission } }"""
    gql(client, document, token=storefront)  # two fields after merging: 2 attempts
    body = gql(client, document, token=storefront)
    assert error_codes(body) == ["RATE_LIMITED"]  # the 4th attempt


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_a_trusted_token_is_not_limited(client, storefront, admin, card):
    for n in range(2):
        gql(client, LOOKUP, {"c": _unknown(n)}, token=storefront)
    assert error_codes(gql(client, LOOKUP, {"c": CODE}, token=storefront)) == ["RATE_LIMITED"]
    for _ in range(10):
        body = gql(client, LOOKUP, {"c": CODE}, token=admin)
        assert body["data"]["giftcard"]["results"][0]["id"] == str(card)


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_counted_per_subject_across_addresses_and_per_address_across_subjects(settings, services, mint, card):
    app = create_app(settings, services)
    one, other = mint(roles=["storefront"], sub="shop-1"), mint(roles=["storefront"], sub="shop-2")
    with TestClient(app, client=("192.0.2.1", 5000)) as first, \
            TestClient(app, client=("192.0.2.2", 5000)) as second:
        # the same subject from two addresses: the subject's counter stops it
        assert error_codes(gql(first, LOOKUP, {"c": _unknown(1)}, token=one)) == []
        assert error_codes(gql(second, LOOKUP, {"c": _unknown(2)}, token=one)) == []
        assert error_codes(gql(second, LOOKUP, {"c": _unknown(3)}, token=one)) == ["RATE_LIMITED"]
        # another subject from the second address: that address is spent too
        assert error_codes(gql(second, LOOKUP, {"c": _unknown(4)}, token=other)) == ["RATE_LIMITED"]
        # the other subject from a fresh address still has its own attempts
        with TestClient(app, client=("192.0.2.3", 5000)) as third:
            assert error_codes(gql(third, LOOKUP, {"c": _unknown(5)}, token=other)) == []


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_code_transactions_are_limited_and_write_nothing(client, pos, card, services):
    for _ in range(2):
        assert error_codes(_spend(client, pos)) == []
    body = _spend(client, pos)
    assert error_codes(body) == ["RATE_LIMITED"]
    with services.engine.connect() as connection:
        balance = connection.execute(text("SELECT balance FROM giftcards WHERE id = :id"), {"id": card})
        assert balance.scalar() == 998


@pytest.mark.settings(code_attempt_limits="1/minute")
def test_history_by_code_is_limited_without_list_gift_cards(client, mint, card):
    auditor = mint(permissions=["ListGiftCardTransactions", "FindGiftCardByCode", "UsePhysicalGiftCardCodes"],
                   sub="auditor")
    assert error_codes(gql(client, HISTORY, {"c": CODE}, token=auditor)) == []
    assert error_codes(gql(client, HISTORY, {"c": CODE}, token=auditor)) == ["RATE_LIMITED"]


@pytest.mark.settings(code_attempt_limits="100/minute;2/10 seconds")
def test_bursts_are_limited_inside_the_rate(client, storefront, card):
    codes = [error_codes(gql(client, LOOKUP, {"c": _unknown(n)}, token=storefront)) for n in range(3)]
    assert codes == [[], [], ["RATE_LIMITED"]]


def test_redis_counters_are_shared_between_workers(database_url, tmp_path, mint, seed):
    # Two services built from the same settings are two workers: one counter in Redis.
    settings = make_settings(database_url, tmp_path, redis_url=REDIS, redis_prefix=f"t{uuid.uuid4().hex}",
                             code_attempt_limits="3/minute")
    workers = [build_services(settings), build_services(settings)]
    try:
        token = mint(roles=["storefront"], sub="shop")
        with TestClient(create_app(settings, workers[0])) as first, \
                TestClient(create_app(settings, workers[1])) as second:
            answers = [error_codes(gql(client, LOOKUP, {"c": _unknown(n)}, token=token))
                       for n, client in enumerate([first, second, first, second, first])]
        assert answers == [[], [], [], ["RATE_LIMITED"], ["RATE_LIMITED"]]
    finally:
        workers[0].code_throttle.reset()
        for worker in workers:
            worker.engine.dispose()


def test_unreachable_redis_refuses_untrusted_attempts(database_url, tmp_path, mint, seed):
    settings = make_settings(database_url, tmp_path, redis_url="redis://127.0.0.1:1/0")
    services = build_services(settings)
    try:
        with TestClient(create_app(settings, services)) as client:
            body = gql(client, LOOKUP, {"c": CODE}, token=mint(roles=["storefront"]))
            assert error_codes(body) == ["UNAVAILABLE"]
            assert "redis" not in str(body).lower()
            assert error_codes(gql(client, LOOKUP, {"c": CODE}, token=mint(roles=["admin"]))) == []
    finally:
        services.engine.dispose()


@pytest.mark.parametrize(("overrides", "named"), [
    ({"code_attempt_limits": "lots"}, "GIFTCARDS_CODE_ATTEMPT_LIMITS"),
    ({"code_attempt_limits": "30/fortnight"}, "GIFTCARDS_CODE_ATTEMPT_LIMITS"),
    ({"client_secret_limits": ""}, "GIFTCARDS_CLIENT_SECRET_LIMITS"),
    ({"redis_url": "http://127.0.0.1:6379"}, "GIFTCARDS_REDIS_URL"),
])
def test_bad_limit_settings_stop_start_up(tmp_path, overrides, named):
    settings = make_settings(f"sqlite:///{tmp_path}/g.db", tmp_path, **overrides)
    with pytest.raises(ConfigurationError, match=named):
        build_services(settings)


# --- PIN lockout ---------------------------------------------------------------------------------


def _lock_state(services, card_id):
    with services.engine.connect() as connection:
        return connection.execute(text(
            "SELECT failed_pin_attempts, pin_locked_until FROM giftcard_codes WHERE giftcard_id = :id"),
            {"id": card_id}).one()


def test_five_wrong_pins_lock_the_code_even_for_the_right_pin(client, pos, admin, card, services):
    wrong = [_spend(client, pos, pin="0000") for _ in range(5)]
    assert all(error_codes(body) == ["CARD_NOT_USABLE"] for body in wrong)
    failed, locked_until = _lock_state(services, card)
    assert failed == 0 and locked_until is not None
    # the right PIN: refused, with the very answer a wrong one gets
    assert _spend(client, pos) == wrong[0]
    # a trusted caller is told why, and it is not spent either
    body = _spend(client, admin)
    assert error_codes(body) == ["CARD_NOT_USABLE"]
    assert body["errors"][0]["extensions"]["field"] == "pin"
    assert "locked" in body["errors"][0]["message"]
    assert PIN not in str(body)


def test_a_right_pin_restarts_the_count(client, pos, card, services):
    for _ in range(4):
        _spend(client, pos, pin="0000")
    assert _lock_state(services, card)[0] == 4
    assert error_codes(_spend(client, pos)) == []
    assert _lock_state(services, card) == (0, None)
    for _ in range(4):
        _spend(client, pos, pin="0000")
    assert error_codes(_spend(client, pos)) == []


def test_a_missing_pin_is_refused_but_not_counted(client, pos, card, services):
    trans = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": CODE}
    for _ in range(6):
        assert error_codes(gql(client, TRANS, {"trans": trans}, token=pos)) == ["CARD_NOT_USABLE"]
    assert _lock_state(services, card) == (0, None)


@pytest.mark.settings(pin_max_failures=2, pin_lockout_seconds=1)
def test_the_lockout_ends_by_itself(client, pos, card):
    for _ in range(2):
        _spend(client, pos, pin="0000")
    assert error_codes(_spend(client, pos)) == ["CARD_NOT_USABLE"]
    time.sleep(1.2)
    assert error_codes(_spend(client, pos)) == []


@pytest.mark.settings(pin_max_failures=2)
def test_an_operator_unlocks_the_code(client, pos, mint, card, services):
    for _ in range(2):
        _spend(client, pos, pin="0000")
    editor = mint(permissions=["EditGiftCard"], sub="desk")
    body = gql(client, EDIT, {"g": {"id": str(card), "unlockPhysicalPin": True}}, token=editor)
    assert error_codes(body) == []
    assert _lock_state(services, card) == (0, None)
    assert error_codes(_spend(client, pos)) == []
    with services.engine.connect() as connection:
        events = connection.execute(text("SELECT event FROM giftcard_events WHERE giftcard_id = :id"),
                                    {"id": card}).scalars().all()
    assert "PIN_UNLOCKED" in events


@pytest.mark.settings(pin_max_failures=2)
def test_a_new_pin_ends_the_lockout(client, pos, mint, card, services):
    for _ in range(2):
        _spend(client, pos, pin="0000")
    editor = mint(permissions=["EditGiftCard"], sub="desk")
    body = gql(client, EDIT, {"g": {"id": str(card), "physicalCode": CODE, "physicalPin": "97531"}},
               token=editor)
    assert error_codes(body) == []
    assert error_codes(_spend(client, pos, pin="97531")) == []


def test_unlocking_needs_a_code_with_a_pin(client, mint, seed):
    card_id = seed({CodeType.EXTERNAL: "GUARDEXT0001"})
    editor = mint(permissions=["EditGiftCard"], sub="desk")
    body = gql(client, EDIT, {"g": {"id": str(card_id), "unlockPhysicalPin": True}}, token=editor)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "unlockPhysicalPin"
    assert error_codes(gql(client, EDIT, {"g": {"id": str(card_id), "unlockPhysicalPin": True}},
                           token=mint(roles=["pos"]))) == ["FORBIDDEN"]


@pytest.mark.settings(pin_max_failures=100)
def test_concurrent_wrong_pins_each_count_once(settings, services, card):
    from app.domain.ledger import TransRequest
    from app.enums import TransType
    from app.policy import Principal

    till = Principal("till", services.policy.expand([], ["pos"]))
    request = TransRequest(TransType.USE, "-0.01", code_type=CodeType.PHYSICAL, code=CODE, pin="0000")

    def attempt() -> None:
        for _ in range(3):
            with pytest.raises(Exception, match=r"PIN|usable"):
                services.ledger.create(till, request)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _lock_state(services, card) == (12, None)


# --- uniform refusals --------------------------------------------------------------------------


@pytest.mark.settings(refusal_floor_ms=400, pin_max_failures=2)
def test_untrusted_refusals_are_identical_and_take_the_floor(client, pos, admin, card, seed, services):
    blocked = seed({CodeType.PHYSICAL: "GUARDBLOCKED1"}, balance=500)
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE giftcards SET state = 'BLOCKED' WHERE id = :id"), {"id": blocked})
    seed({CodeType.PHYSICAL: "GUARDEXPIRED1"}, balance=500, expires={CodeType.PHYSICAL: date(2020, 1, 1)})
    cases = {
        "unknown": {"code": "GUARDNOSUCH01"},
        "wrong-pin": {"code": CODE, "pin": "1111"},
        "blocked": {"code": "GUARDBLOCKED1"},
        "expired": {"code": "GUARDEXPIRED1"},
    }
    bodies, took = {}, {}
    for name, addressed in cases.items():
        trans = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", **addressed}
        started = time.monotonic()
        bodies[name] = gql(client, TRANS, {"trans": trans}, token=pos)
        took[name] = time.monotonic() - started
    _spend(client, pos, pin="1111")  # the second wrong PIN locks the code
    started = time.monotonic()
    bodies["locked"] = _spend(client, pos)
    took["locked"] = time.monotonic() - started
    assert len({str(body) for body in bodies.values()}) == 1, bodies
    assert error_codes(bodies["unknown"]) == ["CARD_NOT_USABLE"]
    assert min(took.values()) >= 0.4, took
    # trusted callers are told which case it was, without the floor
    started = time.monotonic()
    trusted = gql(client, TRANS, {"trans": {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL",
                                            "code": "GUARDNOSUCH01"}}, token=admin)
    assert time.monotonic() - started < 0.4
    assert error_codes(trusted) == ["NOT_FOUND"]


def test_settings_defaults_match_the_documented_limits():
    defaults = Settings()
    assert (defaults.code_attempt_limits, defaults.pin_max_failures, defaults.pin_lockout_seconds) == (
        "30/minute;10/10 seconds", 5, 900)
    assert (defaults.max_query_depth, defaults.max_aliases, defaults.max_query_tokens) == (8, 15, 2000)
