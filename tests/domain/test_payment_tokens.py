"""Payment tokens through the domain: concurrent spends of one token, lookup under rotated keys, and
no token at rest or in a log. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from app.domain import addressing as addressing_module
from app.domain.addressing import UNUSABLE
from app.domain.payment_tokens import TokenRequest, is_token
from app.domain.trans_requests import TransRequest
from app.enums import CodeType, TransType
from app.errors import CardNotUsableError
from app.policy import Principal
from app.services import build_services
from tests.conftest import _key, fund, make_settings
from tests.domain.test_ledger import Clock
from tests.test_concurrency import in_parallel, ledger_differences, scalar

CODE, PIN = "TOKENRACE0001", "5150"
FRONT = Principal("front", frozenset({"FindGiftCardByCode", "UsePhysicalGiftCardCodes"}))
BACK = Principal("back", frozenset({"FindGiftCardByCode", "UsePhysicalGiftCardCodes", "GiftCardTransUse"}))


def _spend(token: str, amount: str = "-1.00") -> TransRequest:
    return TransRequest(TransType.USE, amount, token=token)


@pytest.fixture
def card(services, seed):
    card_id = seed({CodeType.PHYSICAL: CODE}, pin=PIN)
    fund(services.engine, card_id, 1000)
    return card_id


def test_concurrent_spends_of_one_token_commit_exactly_one(services, card):
    # given one token
    token = services.payment_tokens.tokenize(FRONT, TokenRequest(CODE, CodeType.PHYSICAL, PIN)).token

    # when eight back-end threads spend it at the same moment
    def spend(n: int) -> str:
        try:
            return str(services.ledger.create(BACK, _spend(token)).balance)
        except CardNotUsableError as refused:  # the uniform refusal, whichever check saw it used
            assert str(refused) == UNUSABLE
            return "refused"

    outcomes = in_parallel(8, spend)

    # then exactly one committed, with one ledger row, and the books agree
    assert sorted(outcomes) == ["900", *["refused"] * 7]
    assert scalar(services.engine, "SELECT balance FROM giftcards WHERE id = :id", id=card) == 900
    assert scalar(services.engine, "SELECT count(*) FROM giftcard_transactions WHERE amount = -100") == 1
    assert scalar(services.engine, "SELECT count(*) FROM payment_tokens WHERE used_at IS NOT NULL") == 1
    assert ledger_differences(services.engine) == []


def test_a_token_made_under_an_old_lookup_key_is_found_after_rotation(settings, tmp_path, card, services):
    # given a token hashed under the only lookup key
    old = make_settings(
        settings.database_url, tmp_path, code_lookup_key=None, code_lookup_keys="lk1:" + _key(1)
    )
    before = build_services(old)
    token = before.payment_tokens.tokenize(FRONT, TokenRequest(CODE, pin=PIN)).token
    before.engine.dispose()

    # when a new lookup key becomes current, the old one kept in the ring
    ring = f"lk2:{_key(9)},lk1:{_key(1)}"
    after = build_services(
        make_settings(settings.database_url, tmp_path, code_lookup_key=None, code_lookup_keys=ring)
    )
    try:
        # then the token still finds its card and spends; a new token is hashed under the new key
        assert [card_.id for card_ in after.lookup.find(BACK, token=token).cards] == [card]
        assert after.ledger.create(BACK, _spend(token)).balance == 900
        after.payment_tokens.tokenize(FRONT, TokenRequest(CODE, pin=PIN))
        with after.engine.connect() as connection:
            key_ids = connection.execute(
                text("SELECT token_key_id FROM payment_tokens ORDER BY id")
            ).scalars()
            assert list(key_ids) == ["lk1", "lk2"]
    finally:
        after.engine.dispose()


def test_no_token_at_rest_or_in_a_log(services, card, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    issued = services.payment_tokens.tokenize(FRONT, TokenRequest(CODE, pin=PIN), key="k1")
    services.lookup.find(BACK, token=issued.token)
    services.ledger.create(BACK, _spend(issued.token), key="k2")
    assert is_token(issued.token)

    secret = issued.token.encode()
    with services.engine.connect() as connection:
        dumped = []
        for table in ("payment_tokens", "idempotency_keys", "audit_events", "giftcard_transactions"):
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                dumped += [
                    bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                    for value in row
                ]
    if database_url.startswith("sqlite"):  # the file itself, journal too
        path = Path(database_url.removeprefix("sqlite:///"))
        dumped += [part.read_bytes() for part in path.parent.glob(path.name + "*")]
    assert dumped and not any(secret in value or secret[4:] in value for value in dumped)
    assert issued.token not in caplog.text and issued.token[4:] not in caplog.text
    assert (
        scalar(
            services.engine,
            "SELECT count(*) FROM payment_tokens WHERE expires_at > :now",
            now=datetime.now(UTC),
        )
        == 1
    )


@pytest.mark.settings(refusal_floor_ms=500)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_untrusted_tokenize_refusal_takes_the_refusal_floor(services, card, monkeypatch):
    clock = Clock(100.0, 100.125)
    monkeypatch.setattr(addressing_module, "time", clock)

    with pytest.raises(CardNotUsableError):
        services.payment_tokens.tokenize(FRONT, TokenRequest(CODE, CodeType.PHYSICAL, "0000"))

    assert clock.slept == [0.375]
