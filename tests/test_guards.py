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


def _without_budget(mint, services, role, sub):
    """A token with the role's permissions but not the role, so that its budget is the setting
    (GIFTCARDS_CODE_ATTEMPT_LIMITS) each test sets, not the role's own."""
    return mint(permissions=sorted(services.policy.roles[role]), sub=sub)


@pytest.fixture
def storefront(mint, services):
    return _without_budget(mint, services, "storefront", "shop")


@pytest.fixture
def pos(mint, services):
    return _without_budget(mint, services, "pos", "till")


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
    return (
        "query { "
        + " ".join(f'a{n}: giftcard(code: "{_unknown(n)}") {{ limitedByPermission }}' for n in range(count))
        + " }"
    )


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
    assert body["data"] == {
        "a0": {"limitedByPermission": False},
        "a1": {"limitedByPermission": False},
        "a2": {"limitedByPermission": False},
        "a3": None,
        "a4": None,
    }
    assert sorted((error["path"], error["extensions"]["code"]) for error in body["errors"]) == [
        (["a3"], "RATE_LIMITED"),
        (["a4"], "RATE_LIMITED"),
    ]


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
    one = _without_budget(mint, services, "storefront", "shop-1")
    other = _without_budget(mint, services, "storefront", "shop-2")
    with (
        TestClient(app, client=("192.0.2.1", 5000)) as first,
        TestClient(app, client=("192.0.2.2", 5000)) as second,
    ):
        # the same subject from two addresses: the subject's counter stops it
        assert error_codes(gql(first, LOOKUP, {"c": _unknown(1)}, token=one)) == []
        assert error_codes(gql(second, LOOKUP, {"c": _unknown(2)}, token=one)) == []
        assert error_codes(gql(second, LOOKUP, {"c": _unknown(3)}, token=one)) == ["RATE_LIMITED"]
        # the refused lookup took nothing; another subject from the second address spends the
        # unit left there, and then that address is spent for it too
        assert error_codes(gql(second, LOOKUP, {"c": _unknown(4)}, token=other)) == []
        assert error_codes(gql(second, LOOKUP, {"c": _unknown(5)}, token=other)) == ["RATE_LIMITED"]
        # the other subject from a fresh address still has its own unit left
        with TestClient(app, client=("192.0.2.3", 5000)) as third:
            assert error_codes(gql(third, LOOKUP, {"c": _unknown(6)}, token=other)) == []
            assert error_codes(gql(third, LOOKUP, {"c": _unknown(7)}, token=other)) == ["RATE_LIMITED"]


def test_a_storefront_token_holds_each_address_to_a_few_guesses(settings, services, mint, card):
    # the shipped budget of the storefront role: 3 per 10 seconds and 5 a minute per address
    app, shop = create_app(settings, services), mint(roles=["storefront"], sub="shop")
    with TestClient(app, client=("192.0.2.1", 5000)) as customer:
        for _ in range(10):
            assert gql(customer, LOOKUP, {"c": CODE}, token=shop)["data"]["giftcard"]["results"] != []
        misses = [error_codes(gql(customer, LOOKUP, {"c": _unknown(n)}, token=shop)) for n in range(4)]
        assert misses == [[], [], [], ["RATE_LIMITED"]]
        assert error_codes(gql(customer, LOOKUP, {"c": CODE}, token=shop)) == ["RATE_LIMITED"]
    # the shop's other customers are served
    for address in ("192.0.2.2", "192.0.2.3"):
        with TestClient(app, client=(address, 5000)) as other:
            assert gql(other, LOOKUP, {"c": CODE}, token=shop)["data"]["giftcard"]["results"] != []


def test_a_pos_token_is_not_held_to_a_storefront_budget(settings, services, mint, card):
    app, till = create_app(settings, services), mint(roles=["pos"], sub="till")
    with TestClient(app, client=("192.0.2.1", 5000)) as store:
        typos = {
            tuple(
                error_codes(
                    _spend(store, till, amount="-0.01")
                    if n % 2
                    else gql(store, LOOKUP, {"c": _unknown(n)}, token=till)
                )
            )
            for n in range(60)
        }
        assert typos == {()}, "a busy till's mistyped codes and its sales are all answered"


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_code_transactions_are_limited_and_write_nothing(client, pos, card, services):
    for _ in range(2):
        assert error_codes(_spend(client, pos, pin="0000")) == ["CARD_NOT_USABLE"]  # wrong PINs: misses
    body = _spend(client, pos)
    assert error_codes(body) == ["RATE_LIMITED"]
    with services.engine.connect() as connection:
        balance = connection.execute(text("SELECT balance FROM giftcards WHERE id = :id"), {"id": card})
        assert balance.scalar() == 1000
        failed = connection.execute(text("SELECT failed_pin_attempts FROM giftcard_codes")).scalar()
        assert failed == 2  # the refused attempt never reached the PIN


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_hits_give_their_unit_back(client, storefront, pos, card, services):
    # many more lookups and debits with a live code and the right PIN than the budget holds
    for _ in range(6):
        assert error_codes(gql(client, LOOKUP, {"c": CODE}, token=storefront)) == []
        assert error_codes(_spend(client, pos)) == []
    # so the budget is whole: two misses fit, the third does not
    assert error_codes(gql(client, LOOKUP, {"c": _unknown(1)}, token=storefront)) == []
    assert error_codes(gql(client, LOOKUP, {"c": _unknown(2)}, token=storefront)) == []
    assert error_codes(gql(client, LOOKUP, {"c": CODE}, token=storefront)) == ["RATE_LIMITED"]
    # the till shares the address (spent now), but every debit before went through
    assert error_codes(_spend(client, pos)) == ["RATE_LIMITED"]
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT balance FROM giftcards")).scalar() == 1000 - 6


@pytest.mark.settings(code_attempt_limits="2/minute")
@pytest.mark.parametrize("miss", ["unknown code", "wrong PIN", "locked code", "missing PIN", "blocked card"])
def test_every_uniform_refusal_keeps_its_unit(client, pos, admin, card, services, miss):
    debit = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": CODE, "pin": PIN}
    if miss == "unknown code":
        debit["code"] = "GUARDNOSUCH01"
    elif miss == "wrong PIN":
        debit["pin"] = "0000"
    elif miss == "missing PIN":
        del debit["pin"]
    elif miss == "locked code":
        with services.engine.begin() as connection:
            connection.execute(
                text("UPDATE giftcard_codes SET pin_locked_until = :t"), {"t": "2999-01-01 00:00:00"}
            )
    else:
        with services.engine.begin() as connection:
            connection.execute(text("UPDATE giftcards SET state = 'BLOCKED'"))
    for _ in range(2):
        assert error_codes(gql(client, TRANS, {"trans": debit}, token=pos)) == ["CARD_NOT_USABLE"]
    assert error_codes(gql(client, TRANS, {"trans": debit}, token=pos)) == ["RATE_LIMITED"]


@pytest.mark.settings(code_attempt_limits="2/minute")
def test_refusals_that_tell_nothing_of_a_code_cost_nothing(client, pos, card):
    # a malformed code or PIN, a forbidden code type and funds too short are no guesses
    refusals = [
        {"code": "$$$$$$"},
        {"pin": "12"},
        {"codeType": "EXTERNAL"},
        {"amount": "-99.00"},
    ]
    for change in refusals * 2:
        debit = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": CODE, "pin": PIN}
        assert error_codes(gql(client, TRANS, {"trans": {**debit, **change}}, token=pos)) != ["RATE_LIMITED"]
    assert error_codes(_spend(client, pos, pin="0000")) == ["CARD_NOT_USABLE"]
    assert error_codes(_spend(client, pos, pin="0000")) == ["CARD_NOT_USABLE"]
    assert error_codes(_spend(client, pos)) == ["RATE_LIMITED"]


@pytest.mark.settings(code_attempt_limits="1/minute")
def test_history_by_code_is_limited_without_list_gift_cards(client, mint, card, seed):
    auditor = mint(
        permissions=[
            "ListGiftCardTransactions",
            "FindGiftCardByCode",
            "UsePhysicalGiftCardCodes",
            "GiftCardTransUse",
        ],
        sub="auditor",
    )
    # a page with rows tells the code exists: a hit, given back
    assert error_codes(_spend(client, auditor)) == []
    for _ in range(3):
        body = gql(client, HISTORY, {"c": CODE}, token=auditor)
        assert error_codes(body) == [] and len(body["data"]["giftcardTransactions"]["edges"]) == 2
    # an empty page by a live code (a new card's, or past the last row) is a hit too
    fresh = "GUARDPHYS0002"
    seed({CodeType.PHYSICAL: fresh})
    for _ in range(3):
        page = gql(client, HISTORY, {"c": fresh}, token=auditor)
        assert page["data"]["giftcardTransactions"]["edges"] == []
    # an empty page by an unknown code is a miss
    empty = gql(client, HISTORY, {"c": _unknown(1)}, token=auditor)
    assert empty["data"]["giftcardTransactions"]["edges"] == []
    assert error_codes(gql(client, HISTORY, {"c": CODE}, token=auditor)) == ["RATE_LIMITED"]


@pytest.mark.settings(code_attempt_limits="100/minute;2/10 seconds")
def test_bursts_are_limited_inside_the_rate(client, storefront, card):
    codes = [error_codes(gql(client, LOOKUP, {"c": _unknown(n)}, token=storefront)) for n in range(3)]
    assert codes == [[], [], ["RATE_LIMITED"]]


def test_redis_counters_are_shared_between_workers(database_url, tmp_path, mint, seed):
    # Two services built from the same settings are two workers: one counter in Redis.
    settings = make_settings(
        database_url,
        tmp_path,
        redis_url=REDIS,
        redis_prefix=f"t{uuid.uuid4().hex}",
        code_attempt_limits="3/minute",
    )
    workers = [build_services(settings), build_services(settings)]
    try:
        token = mint(roles=["storefront"], sub="shop")
        with (
            TestClient(create_app(settings, workers[0])) as first,
            TestClient(create_app(settings, workers[1])) as second,
        ):
            answers = [
                error_codes(gql(client, LOOKUP, {"c": _unknown(n)}, token=token))
                for n, client in enumerate([first, second, first, second, first])
            ]
        assert answers == [[], [], [], ["RATE_LIMITED"], ["RATE_LIMITED"]]
    finally:
        workers[0].code_throttle.reset()
        for worker in workers:
            worker.engine.dispose()


def test_unreachable_redis_falls_back_to_a_share_of_the_budget_per_worker(
    database_url, tmp_path, mint, seed, services, caplog
):
    seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    settings = make_settings(
        database_url, tmp_path, redis_url="redis://127.0.0.1:1/0", workers=2, code_attempt_limits="4/minute"
    )
    alone = build_services(settings)
    shop = _without_budget(mint, services, "storefront", "shop")
    try:
        with TestClient(create_app(settings, alone)) as client:
            # sales go on: hits are answered, however many
            for _ in range(5):
                assert gql(client, LOOKUP, {"c": CODE}, token=shop)["data"]["giftcard"]["results"] != []
            # misses are held to this worker's share: 4 // 2 workers
            misses = [error_codes(gql(client, LOOKUP, {"c": _unknown(n)}, token=shop)) for n in range(3)]
            assert misses == [[], [], ["RATE_LIMITED"]]
            ready = client.get("/readyz")
            assert (ready.status_code, ready.json()) == (
                200,
                {"status": "degraded", "database": "ok", "redis": "unreachable", "budgets": "per process"},
            )
        assert (
            "Redis unreachable (ConnectionError): attempt budgets are counted per process, each divided "
            "by 2 worker(s)" in caplog.text
        )
    finally:
        alone.engine.dispose()


def test_readiness_reports_shared_budgets_while_redis_answers(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, redis_url=REDIS, redis_prefix=f"t{uuid.uuid4().hex}")
    shared = build_services(settings)
    try:
        with TestClient(create_app(settings, shared)) as client:
            ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (
            200,
            {"status": "ready", "database": "ok", "redis": "ok", "budgets": "shared"},
        )
    finally:
        shared.engine.dispose()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"code_attempt_limits": "lots"}, "GIFTCARDS_CODE_ATTEMPT_LIMITS"),
        ({"code_attempt_limits": "30/fortnight"}, "GIFTCARDS_CODE_ATTEMPT_LIMITS"),
        ({"client_secret_limits": ""}, "GIFTCARDS_CLIENT_SECRET_LIMITS"),
        ({"redis_url": "http://127.0.0.1:6379"}, "GIFTCARDS_REDIS_URL"),
    ],
)
def test_bad_limit_settings_stop_start_up(tmp_path, overrides, named):
    settings = make_settings(f"sqlite:///{tmp_path}/g.db", tmp_path, **overrides)
    with pytest.raises(ConfigurationError, match=named):
        build_services(settings)


# --- PIN lockout ---------------------------------------------------------------------------------


def _lock_state(services, card_id):
    with services.engine.connect() as connection:
        return connection.execute(
            text("SELECT failed_pin_attempts, pin_locked_until FROM giftcard_codes WHERE giftcard_id = :id"),
            {"id": card_id},
        ).one()


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
        events = (
            connection.execute(
                text("SELECT event FROM giftcard_events WHERE giftcard_id = :id"), {"id": card}
            )
            .scalars()
            .all()
        )
    assert "PIN_UNLOCKED" in events


@pytest.mark.settings(pin_max_failures=2)
def test_a_new_pin_ends_the_lockout(client, pos, mint, card, services):
    for _ in range(2):
        _spend(client, pos, pin="0000")
    editor = mint(permissions=["EditGiftCard"], sub="desk")
    body = gql(
        client, EDIT, {"g": {"id": str(card), "physicalCode": CODE, "physicalPin": "97531"}}, token=editor
    )
    assert error_codes(body) == []
    assert error_codes(_spend(client, pos, pin="97531")) == []


def test_unlocking_needs_a_code_with_a_pin(client, mint, seed):
    card_id = seed({CodeType.EXTERNAL: "GUARDEXT0001"})
    editor = mint(permissions=["EditGiftCard"], sub="desk")
    body = gql(client, EDIT, {"g": {"id": str(card_id), "unlockPhysicalPin": True}}, token=editor)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "unlockPhysicalPin"
    assert error_codes(
        gql(client, EDIT, {"g": {"id": str(card_id), "unlockPhysicalPin": True}}, token=mint(roles=["pos"]))
    ) == ["FORBIDDEN"]


@pytest.mark.settings(pin_max_failures=100)
def test_concurrent_wrong_pins_each_count_once(settings, services, card):
    from app.domain.trans_requests import TransRequest
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
@pytest.mark.timing
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
    trusted = gql(
        client,
        TRANS,
        {"trans": {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": "GUARDNOSUCH01"}},
        token=admin,
    )
    assert time.monotonic() - started < 0.4
    assert error_codes(trusted) == ["NOT_FOUND"]


def test_settings_defaults_match_the_documented_limits():
    defaults = Settings()
    assert (defaults.code_attempt_limits, defaults.pin_max_failures, defaults.pin_lockout_seconds) == (
        "30/minute;10/10 seconds",
        5,
        900,
    )
    assert (defaults.max_query_depth, defaults.max_aliases, defaults.max_query_tokens) == (8, 15, 2000)
