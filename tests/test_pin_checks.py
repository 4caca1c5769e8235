"""PIN checks under the code's row lock: no concurrency gets more guesses than the lockout allows.

Directly through the domain on SQLite and PostgreSQL, many threads at once; then the upgrade path
from argon2 PINs, PIN key rotation, and the time an untrusted refusal takes.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import pytest
from sqlalchemy import text

from app.domain import keys
from app.domain.pins import PinKeys
from app.domain.trans_requests import TransRequest
from app.enums import CodeType, TransType
from app.errors import CardNotUsableError
from app.policy import Principal
from app.services import build_services
from tests.conftest import _key, error_codes, fund, gql, legacy_pin_hash, make_settings
from tests.test_concurrency import in_parallel, ledger_differences, scalar

CODE, OTHER, PIN = "PINRACE00001", "PINRACE00002", "4321"
# A POS without ListGiftCards: every refusal is the uniform one.
POS = frozenset({"GiftCardTransUse", "UsePhysicalGiftCardCodes"})


def _debit(code: str = CODE, pin: str | None = PIN, amount: str = "-0.01") -> TransRequest:
    return TransRequest(TransType.USE, amount, code_type=CodeType.PHYSICAL, code=code, pin=pin)


class CountedChecks:
    """Wraps ``services.pins.verify`` to count the PIN checks that actually ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pins: PinKeys) -> None:
        self.count, self._lock, verify = 0, threading.Lock(), pins.verify

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.count += 1
            return verify(*args, **kwargs)

        monkeypatch.setattr(pins, "verify", counted)


def test_fifty_concurrent_wrong_pins_get_exactly_the_allowed_checks(services, seed, monkeypatch):
    # given a funded card with a PIN, and another card with a PIN beside it
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    other_id = seed({CodeType.PHYSICAL: OTHER}, pin=PIN)
    fund(services.engine, card_id, 1000)
    fund(services.engine, other_id, 1000)
    checks = CountedChecks(monkeypatch, services.pins)

    # when 50 clients send a wrong PIN at the same moment
    def guess(n: int) -> str:
        try:
            services.ledger.create(Principal(f"pos-{n}", POS), _debit(pin=f"{9000 + n}"))
        except CardNotUsableError as exc:
            return exc.code.value
        return "MOVED MONEY"

    answers = in_parallel(50, guess)

    # then each is refused, exactly the configured number of PINs was checked, and the code is locked
    assert answers == ["CARD_NOT_USABLE"] * 50
    assert checks.count == services.settings.pin_max_failures == 5
    with services.engine.connect() as connection:
        locked = connection.execute(
            text(
                "SELECT pin_locked_until FROM giftcard_codes c JOIN giftcards g ON g.id = c.giftcard_id "
                "WHERE g.id = :id"
            ),
            {"id": card_id},
        ).scalar_one()
    assert locked is not None
    # and the right PIN, sent just after, is refused too (without being checked) and moves nothing
    with pytest.raises(CardNotUsableError):
        services.ledger.create(Principal("pos-late", POS), _debit())
    assert checks.count == 5
    assert scalar(services.engine, "SELECT balance FROM giftcards WHERE id = :id", id=card_id) == 1000
    # and the card beside it was neither counted nor locked: its right PIN still works
    view = services.ledger.create(Principal("pos-other", POS), _debit(code=OTHER))
    assert view.balance == 999
    assert scalar(services.engine, "SELECT COUNT(*) FROM giftcard_transactions WHERE trans_type = 'USE'") == 1


def test_wrong_pins_from_many_tokens_share_one_count(services, seed, monkeypatch):
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    checks = CountedChecks(monkeypatch, services.pins)

    def guess(n: int) -> None:  # three tokens, each sending four wrong PINs at once
        with pytest.raises(CardNotUsableError):
            services.ledger.create(Principal(f"token-{n % 3}", POS), _debit(pin="0000"))

    in_parallel(12, guess)
    assert checks.count == 5


def test_sixteen_concurrent_right_pins_all_debit(services, seed):
    # given a card with a PIN, one wrong PIN already counted
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    with pytest.raises(CardNotUsableError):
        services.ledger.create(Principal("pos", POS), _debit(pin="0000"))

    # when 16 tills debit with the right PIN at once
    views = in_parallel(16, lambda n: services.ledger.create(Principal(f"pos-{n}", POS), _debit()))

    # then every one succeeds, one cent each, and the wrong-PIN count is back to zero
    assert sorted(view.balance for view in views) == list(range(984, 1000))
    assert scalar(services.engine, "SELECT balance FROM giftcards WHERE id = :id", id=card_id) == 984
    assert scalar(services.engine, "SELECT MAX(failed_pin_attempts) FROM giftcard_codes") == 0
    assert ledger_differences(services.engine) == []


# --- the upgrade path: argon2 PINs -----------------------------------------------------------


def _make_legacy(services, card_id: int, pin: str) -> None:
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcard_codes SET pin_hash = :value, pin_key_ids = NULL WHERE giftcard_id = :id"),
            {"value": legacy_pin_hash(services.settings, pin), "id": card_id},
        )


def test_an_argon2_pin_still_works_and_a_right_pin_replaces_it(services, seed):
    # given a card whose PIN an older version stored as argon2
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    _make_legacy(services, card_id, PIN)
    assert keys.key_status(services.key_rows, services.vault, services.pins).argon2_pins == 1

    # when a wrong PIN is sent, it is refused and counted
    with pytest.raises(CardNotUsableError):
        services.ledger.create(Principal("pos", POS), _debit(pin="9999"))
    assert (
        scalar(
            services.engine,
            "SELECT failed_pin_attempts FROM giftcard_codes WHERE giftcard_id = :id",
            id=card_id,
        )
        == 1
    )
    # when the right PIN is sent, the debit goes through and the PIN is keyed from then on
    assert services.ledger.create(Principal("pos", POS), _debit()).balance == 999
    with services.engine.connect() as connection:
        value, key_ids, failed = connection.execute(
            text(
                "SELECT pin_hash, pin_key_ids, failed_pin_attempts FROM giftcard_codes "
                "WHERE giftcard_id = :id"
            ),
            {"id": card_id},
        ).one()
    assert key_ids == services.pins.current_key_id and not value.startswith("$argon2")
    assert failed == 0
    assert keys.key_status(services.key_rows, services.vault, services.pins).argon2_pins == 0
    assert services.ledger.create(Principal("pos", POS), _debit()).balance == 998


# --- PIN key rotation ------------------------------------------------------------------------


def _chains(services) -> dict[int, str]:
    with services.engine.connect() as connection:
        return dict(connection.execute(text("SELECT giftcard_id, pin_key_ids FROM giftcard_codes")).all())


def test_rotation_wraps_pins_and_the_old_key_goes_after_a_right_pin(database_url, tmp_path, seed, services):
    # given two cards with PINs under the PIN key tp1
    first = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    second = seed({CodeType.PHYSICAL: OTHER}, pin="123456")
    for card_id in (first, second):
        fund(services.engine, card_id, 1000)
    old_ring = services.settings.pin_keys.get_secret_value()  # type: ignore[union-attr]

    # when a new PIN key is put first and the PINs are rotated
    rotated = build_services(make_settings(database_url, tmp_path, pin_keys=f"tp2:{_key(9)},{old_ring}"))
    try:
        assert keys.rotate_pins(rotated.key_rows, rotated.pins, batch_size=1) == 2
        assert keys.rotate_pins(rotated.key_rows, rotated.pins) == 0  # nothing left to move
        assert set(_chains(rotated).values()) == {"tp1,tp2"}
        status = keys.key_status(rotated.key_rows, rotated.vault, rotated.pins)
        assert status.stale_pins == 0
        assert [use.key_id for use in status.removable() if use.ring == keys.PIN] == []  # tp1 still needed

        # then both PINs verify through the chain; a right PIN re-keys its code under tp2 alone
        assert rotated.ledger.create(Principal("pos", POS), _debit()).balance == 999
        with pytest.raises(CardNotUsableError):
            rotated.ledger.create(Principal("pos", POS), _debit(code=OTHER, pin="654321"))
        assert _chains(rotated) == {first: "tp2", second: "tp1,tp2"}
        assert rotated.ledger.create(Principal("pos", POS), _debit(code=OTHER, pin="123456")).balance == 999
        status = keys.key_status(rotated.key_rows, rotated.vault, rotated.pins)
        assert [use.key_id for use in status.removable() if use.ring == keys.PIN] == ["tp1"]
    finally:
        rotated.engine.dispose()


# --- the time an untrusted refusal takes ----------------------------------------------------


TRANS = """mutation T($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id } }"""


@pytest.mark.settings(refusal_floor_ms=300, pin_max_failures=100)
@pytest.mark.timing
def test_a_pin_protected_code_and_an_unknown_code_take_the_same_time(client, seed, mint, services):
    # given a card with a PIN, and a storefront-like POS token without ListGiftCards
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    token = mint(permissions=sorted(POS))
    timings: dict[str, list[float]] = {"wrong PIN": [], "unknown code": []}
    cases = {
        "wrong PIN": {"code": CODE, "pin": "9999"},
        "unknown code": {"code": "PINRACE99999", "pin": "9999"},
    }

    # when both refusals are asked for, interleaved
    for _ in range(8):
        for name, address in cases.items():
            started = time.monotonic()
            body = gql(
                client,
                TRANS,
                {"trans": {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", **address}},
                token=token,
            )
            timings[name].append(time.monotonic() - started)
            assert error_codes(body) == ["CARD_NOT_USABLE"]

    # then each takes at least the floor, and their medians are within a few milliseconds
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print("medians (s):", {name: round(value, 4) for name, value in medians.items()})
    assert min(min(values) for values in timings.values()) >= 0.3
    assert abs(medians["wrong PIN"] - medians["unknown code"]) < 0.02


@pytest.mark.parametrize("pin", ["12a4", "123", "1234567890123", "١٢٣٤", " 1234"])
def test_a_malformed_pin_is_bad_input_before_any_card_is_looked_at(client, seed, mint, services, pin):
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    token = mint(permissions=sorted(POS))
    for code in (CODE, "PINRACE99999"):  # the same answer for a real and an unknown code
        body = gql(
            client,
            TRANS,
            {
                "trans": {
                    "transType": "USE",
                    "amount": "-0.01",
                    "codeType": "PHYSICAL",
                    "code": code,
                    "pin": pin,
                }
            },
            token=token,
        )
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert body["errors"][0]["extensions"]["field"] == "pin" and pin not in body["errors"][0]["message"]
    assert (
        scalar(
            services.engine,
            "SELECT failed_pin_attempts FROM giftcard_codes WHERE giftcard_id = :id",
            id=card_id,
        )
        == 0
    )


def test_one_key_on_a_pin_debit_and_a_capture_at_once_cannot_deadlock(services, seed, monkeypatch):
    # given an authorization, and a capture of it that holds its key claim a moment
    from app.domain import idempotency
    from app.errors import ConflictError

    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    principal = Principal("pos", frozenset({*POS, "ListGiftCards"}))
    hold = services.ledger.create(
        principal,
        TransRequest(
            TransType.USE, "-1.00", code_type=CodeType.PHYSICAL, code=CODE, pin=PIN, authorize_only=True
        ),
    )
    claimed, claim = threading.Event(), idempotency.store.claim_key

    def slow_claim(session, row):
        claimed_it = claim(session, row)
        if threading.current_thread().name == "capture":
            claimed.set()
            time.sleep(0.5)
        return claimed_it

    monkeypatch.setattr(idempotency.store, "claim_key", slow_claim)
    answers: dict[str, str] = {}

    def run(name, call):
        try:
            answers[name] = type(call()).__name__
        except ConflictError:
            answers[name] = "CONFLICT"

    # when a PIN debit with the same key arrives while the capture runs
    def capture_it():
        return services.ledger.capture(principal, str(hold.id), None, "K")

    capture = threading.Thread(name="capture", target=run, args=("capture", capture_it))
    capture.start()
    assert claimed.wait(5)
    run("debit", lambda: services.ledger.create(principal, _debit(), "K"))
    capture.join(10)
    # then one of them runs and the other is told the key is taken: no deadlock, nothing INTERNAL
    assert answers == {"capture": "Transaction", "debit": "CONFLICT"}


@pytest.mark.settings(refusal_floor_ms=200, argon2_concurrency=1)
@pytest.mark.timing
def test_a_busy_argon2_gate_is_the_uniform_refusal_for_a_blind_caller(client, seed, mint, services):
    # given a card whose PIN is still an argon2 hash, and every argon2 slot taken
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    _make_legacy(services, card_id, PIN)
    trans = {
        "trans": {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": CODE, "pin": PIN}
    }
    with services.argon2_gate.admit():
        # then a caller that cannot look codes up gets what an unknown code gets, after the floor
        started = time.monotonic()
        body = gql(client, TRANS, trans, token=mint(permissions=sorted(POS)))
        assert error_codes(body) == ["CARD_NOT_USABLE"] and time.monotonic() - started >= 0.2
        # and a trusted caller is told the server is busy
        busy = gql(client, TRANS, trans, token=mint(roles=["admin"]))
        assert error_codes(busy) == ["UNAVAILABLE"] and busy["errors"][0]["extensions"]["retryAfter"] >= 1
    # and nothing was counted against the code
    assert (
        scalar(
            services.engine,
            "SELECT failed_pin_attempts FROM giftcard_codes WHERE giftcard_id = :id",
            id=card_id,
        )
        == 0
    )


@pytest.mark.settings(refusal_floor_ms=250)
@pytest.mark.timing
def test_each_refusal_in_one_document_takes_the_floor(client, seed, mint, services):
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    document = """mutation T($a: GiftCardTransInput!, $b: GiftCardTransInput!) {
      a: giftcardTransAdd(trans: $a) { id } b: giftcardTransAdd(trans: $b) { id } }"""
    unknown = {
        "transType": "USE",
        "amount": "-0.01",
        "codeType": "PHYSICAL",
        "code": "PINRACE99999",
        "pin": "9999",
    }
    started = time.monotonic()
    token = mint(permissions=sorted(POS))
    body = gql(client, document, {"a": unknown, "b": {**unknown, "code": CODE}}, token=token)
    assert error_codes(body) == ["CARD_NOT_USABLE", "CARD_NOT_USABLE"]
    assert time.monotonic() - started >= 0.5


def test_rotation_compares_key_ids_case_and_all_and_skips_revoked_codes(services, seed):
    # given PINs whose outermost key id differs from the current one only by case, and a revoked code
    first = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    revoked = seed({CodeType.PHYSICAL: OTHER}, pin=PIN, revoked={CodeType.PHYSICAL})
    current = services.pins.current_key_id  # "tp1"
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcard_codes SET pin_key_ids = :chain WHERE giftcard_id = :id"),
            {"chain": f"x,{current.upper()}", "id": first},
        )
    # then the first is stale and wrapped, the revoked one counted nowhere and left alone
    status = keys.key_status(services.key_rows, services.vault, services.pins)
    assert status.stale_pins == 1
    assert keys.rotate_pins(services.key_rows, services.pins) == 1
    assert _chains(services) == {first: f"x,{current.upper()},{current}", revoked: current}
    assert keys.key_status(services.key_rows, services.vault, services.pins).stale_pins == 0


def test_the_server_refuses_to_start_when_a_pin_could_not_be_checked(database_url, tmp_path, seed, services):
    from starlette.testclient import TestClient

    from app.errors import ConfigurationError
    from app.http import create_app

    # given a card whose PIN is still an argon2 hash
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    _make_legacy(services, card_id, PIN)
    # when a server starts without the pepper, or without the PIN key of other codes, it says why
    for overrides, message in (
        ({"pin_pepper": None}, "GIFTCARDS_PIN_PEPPER"),
        ({"pin_keys": f"tp9:{_key(9)}"}, None),
    ):
        settings = make_settings(database_url, tmp_path, **overrides)
        other = build_services(settings)
        try:
            if message is None:  # a second card, keyed under tp1, which this ring lacks
                seed({CodeType.PHYSICAL: OTHER}, pin=PIN)
                message = "'tp1'"
            with pytest.raises(ConfigurationError, match=message), TestClient(create_app(settings, other)):
                pass
        finally:
            other.engine.dispose()
    # and with both, it starts
    with TestClient(create_app(services.settings, services)):
        pass
