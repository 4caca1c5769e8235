"""The payment token rows: the conditional update that uses a token up, and the purge of expired ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.enums import CodeType
from app.store import payment_tokens as store
from app.store.cards import live_codes
from app.store.payment_tokens import PaymentTokenStore
from tests.conftest import transaction

HASH, OTHER = b"\x01" * 32, b"\x02" * 32


def _add(services, seed, token_hash: bytes, expires_at: datetime) -> int:
    card_id = seed({CodeType.PHYSICAL: f"ROWS{token_hash[0]:04d}0001"})
    with transaction(services) as session:
        code_id = _code_id(session, card_id)
        store.add_token(
            session,
            {
                "token_hash": token_hash,
                "token_key_id": "lk1",
                "store_id": "default",
                "giftcard_id": card_id,
                "code_id": code_id,
                "created_at": datetime.now(UTC),
                "expires_at": expires_at,
            },
        )
    found = PaymentTokenStore(services.engine).usable((token_hash,), ("default",), datetime.now(UTC))
    return 0 if found is None else found.token_id


def _code_id(session, card_id: int) -> int:
    (code,) = live_codes(session, card_id)
    assert code.id is not None
    return code.id


def test_a_token_is_used_up_once(services, seed):
    now = datetime.now(UTC)
    token_id = _add(services, seed, HASH, now + timedelta(minutes=5))
    rows = PaymentTokenStore(services.engine)
    with transaction(services) as session:
        assert store.use_token(session, token_id, now, 7) is True
        assert store.use_token(session, token_id, now, 8) is False
    assert rows.usable((HASH,), ("default",), now) is None
    assert rows.usable((HASH,), None, now) is None


def test_an_expired_or_foreign_token_is_not_usable(services, seed):
    now = datetime.now(UTC)
    token_id = _add(services, seed, HASH, now + timedelta(minutes=5))
    rows = PaymentTokenStore(services.engine)
    assert rows.usable((OTHER, HASH), ("default",), now) is not None
    assert rows.usable((HASH,), ("north",), now) is None
    later = now + timedelta(minutes=5)
    assert rows.usable((HASH,), ("default",), later) is None
    with transaction(services) as session:
        assert store.use_token(session, token_id, later, 7) is False


def test_the_purge_forgets_only_expired_tokens(services, seed):
    now = datetime.now(UTC)
    _add(services, seed, HASH, now - timedelta(seconds=1))
    kept = _add(services, seed, OTHER, now + timedelta(minutes=5))
    with transaction(services) as session:
        store.purge_expired(session, now)
    rows = PaymentTokenStore(services.engine)
    assert rows.usable((OTHER,), None, now) is not None
    assert rows.usable((OTHER,), None, now).token_id == kept  # type: ignore[union-attr]
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM payment_tokens")).scalar_one() == 1
