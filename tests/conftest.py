"""Shared fixtures: settings and a migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL tests use ``GIFTCARDS_TEST_POSTGRES_URL`` (default: the local server's ``test``
database). Each run creates its own database there and drops it at the end. When the server is
unreachable the PostgreSQL tests are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from passlib.context import CryptContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session
from starlette.testclient import TestClient

from app import db
from app.auth.tokens import issue_token
from app.config import Settings
from app.db import UnitOfWork
from app.http import create_app
from app.keyrings import decode_key
from app.logs import HANDLER_NAME
from app.services import Services, build_services

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """A command run in-process configures the process's logging (app.logs): undone after the test."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [handler for handler in root.handlers if handler.name == HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture(autouse=True)
def _timed_tests_run_alone(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Under pytest-xdist (scripts/test), a test marked ``timing`` (it asserts on wall-clock time)
    runs while no other test does: it takes a file lock shared by the run's processes exclusively,
    every other test takes it shared. A turnstile lock keeps the timed test from waiting forever
    behind a stream of others. Without xdist there is no one to wait for."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        yield
        return
    alone = request.node.get_closest_marker("timing") is not None
    folder = tmp_path_factory.getbasetemp().parent  # the run's, shared by its processes
    with open(folder / f"timing-{run}.turn", "a") as turn, open(folder / f"timing-{run}.lock", "a") as lock:
        fcntl.flock(turn, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        fcntl.flock(turn, fcntl.LOCK_UN)
        yield  # the lock goes with the file when the test is done


def _key(seed: int) -> str:
    return base64.b64encode(bytes([seed]) * 32).decode()


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "state_dir": tmp_path / "state",
        "permissions_file": ROOT / "permissions.yaml",
        "jwt_secret": JWT_SECRET,
        "code_lookup_key": _key(1),
        "code_encryption_keys": "t1:" + _key(2),
        "pin_keys": "tp1:" + _key(4),
        "pin_pepper": _key(3),  # only for argon2 PINs written before keyed PINs
        # Generous limits and no refusal floor, so that tests of other things are not throttled
        # or slowed; the tests of those guards set them.
        "code_attempt_limits": "100000/minute",
        "refusal_floor_ms": 0,
    }
    values.update(overrides)
    return Settings(**values)


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating costs more than copying)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


@contextmanager
def migrated_postgres_database(prefix: str) -> Iterator[str]:
    """A fresh database named ``prefix_…`` on the test server, migrated, dropped on the way out; the
    test is skipped when the server cannot be reached (a failure on CI)."""
    base = make_url(os.environ.get("GIFTCARDS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {base.render_as_string()} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable ({type(exc).__name__})")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    db.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with migrated_postgres_database("giftcards_test") as url:
        yield url


TABLES = (
    "giftcard_transactions",
    "giftcard_events",
    "giftcard_codes",
    "giftcards",
    "idempotency_keys",
    "reserved_codes",
    "code_reservations",
    "audit_events",
    "programs",
    "payment_tokens",
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "giftcards.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        # Stores are never removed by the server; a test's own go, the migration's default stays.
        connection.execute(text("DELETE FROM stores WHERE id <> 'default'"))
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    # A module's settings marker, then its test's (which wins where both set one)
    overrides: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("settings"))):
        overrides.update(marker.kwargs)
    return make_settings(database_url, tmp_path, **overrides)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.engine.dispose()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(settings, services)) as test_client:
        yield test_client


# --- tokens and GraphQL calls ----------------------------------------------------------------


@pytest.fixture
def mint(settings: Settings, services: Services) -> Callable[..., str]:
    """``mint(permissions=[...], roles=[...], sub=..., stores=[...])`` → a valid bearer token
    (without ``stores``, no claim: the default store)."""

    def _mint(
        permissions: list[str] | tuple[str, ...] = (),
        roles: list[str] | tuple[str, ...] = (),
        sub: str = "tester",
        ttl: int = 600,
        stores: list[str] | tuple[str, ...] | None = None,
    ) -> str:
        return issue_token(
            settings,
            services.policy,
            sub,
            permissions=permissions,
            roles=roles,
            ttl_seconds=ttl,
            stores=stores,
        )

    return _mint


def gql(
    client: TestClient, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def answered(body: dict[str, Any], name: str) -> Any:
    """The answer of root field ``name``, after checking that nothing was refused."""
    assert "errors" not in body, body
    return body["data"][name]


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def legacy_pin_hash(pepper: Settings | bytes, pin: str) -> str:
    """A PIN as stored before keyed PINs: the argon2 hash of the PIN peppered with ``pepper`` (or
    with the settings' GIFTCARDS_PIN_PEPPER)."""
    if isinstance(pepper, Settings):
        assert pepper.pin_pepper is not None
        pepper = decode_key("GIFTCARDS_PIN_PEPPER", pepper.pin_pepper.get_secret_value())
    peppered = hmac.new(pepper, pin.encode(), hashlib.sha256).hexdigest()
    return str(CryptContext(schemes=["argon2"], argon2__type="ID").hash(peppered))


@contextmanager
def transaction(services: Services) -> Iterator[Session]:
    """A session whose writes are committed when the block ends without an error."""
    with UnitOfWork(services.engine) as unit:
        yield unit.session
        unit.commit()


def fund(engine: Engine, card_id: int, units: int) -> None:
    """Load ``units`` through an IMPORT ledger row plus the balance, so `ledger verify` agrees."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO giftcard_transactions (giftcard_id, store_id, trans_type, status, amount, "
                "balance_before, balance_after, partial, created_at) "
                "SELECT :id, store_id, 'IMPORT', 'COMPLETED', :units, 0, :units, false, CURRENT_TIMESTAMP "
                "FROM giftcards WHERE id = :id"
            ),
            {"id": card_id, "units": units},
        )
        connection.execute(
            text("UPDATE giftcards SET balance = :units, state = 'ACTIVE' WHERE id = :id"),
            {"id": card_id, "units": units},
        )


# --- seeding cards directly (codes of any type, revoked or expired codes) -------------------


@pytest.fixture
def seed(services: Services) -> Callable[..., int]:
    """``seed({CodeType.PHYSICAL: "CODE", ...}, member_id=..., balance=..., pin=...)`` → card id.

    ``revoked`` and ``expires`` take sets/dicts keyed by code type; ``store_id`` is the card's store
    (which must exist: see ``add_store``).
    """
    from datetime import UTC, datetime

    from app.domain.codes import normalise
    from app.models import GiftCard, GiftCardCode
    from app.store.cards import add_card, add_codes, set_pin

    def _seed(
        codes: dict[Any, str],
        *,
        member_id: str | None = None,
        balance: int = 0,
        currency: str = "USD",
        pin: str | None = None,
        revoked: set[Any] | frozenset[Any] = frozenset(),
        expires: dict[Any, Any] | None = None,
        store_id: str = "default",
    ) -> int:
        now = datetime.now(UTC)
        card = GiftCard(
            store_id=store_id,
            member_id=member_id,
            currency=currency,
            state="ACTIVE" if balance else "PENDING",
            balance=balance,
            created_by="seed",
            created_at=now,
            updated_at=now,
        )
        rows = []
        for code_type, value in codes.items():
            sealed = services.vault.seal(normalise(value), code_type)
            rows.append(
                GiftCardCode(
                    code_type=code_type.value,
                    **sealed.columns,
                    expires_on=(expires or {}).get(code_type),
                    revoked_at=now if code_type in revoked else None,
                    created_at=now,
                )
            )
        with transaction(services) as session:
            card_id = add_card(session, card)
            for code_id, row in zip(add_codes(session, card, rows), rows, strict=True):
                if pin and row.code_type == "PHYSICAL":
                    stored = services.pins.hash(code_id, pin)
                    set_pin(session, code_id, stored.value, stored.key_ids)
        return card_id

    return _seed


def add_store(services: Services, store_id: str, name: str | None = None) -> None:
    """Add a store (as `giftcards store add` does)."""
    services.stores.add(store_id, name)
