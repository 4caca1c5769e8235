"""scripts/bulk_load.py (the PostgreSQL bulk loader of the lookup benchmark) on a database of its
own: every code it writes is found by its lookup key and opens to itself, the ledger verifies, the
indexes and constraints it drops come back as they were, and it refuses a database with cards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.config import load_settings
from app.domain.codes import CodeVault
from app.store import ledger
from tests.conftest import ROOT, migrated_postgres_database

pytestmark = pytest.mark.postgres

CARDS = 25
SCHEMA = text(
    "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
    "WHERE indrelid = ANY(CAST(:t AS regclass[])) UNION ALL "
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE conrelid = ANY(CAST(:t AS regclass[]))"
)
TABLES = ["giftcards", "giftcard_codes", "giftcard_transactions"]


@pytest.fixture
def own_database() -> Iterator[str]:
    """A migrated database of this test's own (the loader drops indexes while it loads)."""
    with migrated_postgres_database("giftcards_bulk") as url:
        yield url


def _load(env: dict[str, str], codes_file: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "scripts" / "bulk_load.py"), "--cards", str(CARDS)]
    command += ["--codes-file", str(codes_file), "--sample", str(CARDS), "--history", "7", "--workers", "1"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_bulk_load_writes_findable_codes_a_sound_ledger_and_restores_the_schema(own_database, tmp_path):
    env = {
        **os.environ,
        "GIFTCARDS_DATABASE_URL": own_database,
        "GIFTCARDS_STATE_DIR": str(tmp_path / "state"),
        "GIFTCARDS_PERMISSIONS_FILE": str(ROOT / "permissions.yaml"),
    }
    engine = create_engine(own_database)
    with engine.connect() as connection:
        schema_before = sorted(connection.execute(SCHEMA, {"t": TABLES}).all())

    loaded = _load(env, tmp_path / "codes.tsv")

    assert loaded.returncode == 0, loaded.stderr
    history_card = int(loaded.stdout.split()[-1])
    with engine.connect() as connection:
        assert sorted(connection.execute(SCHEMA, {"t": TABLES}).all()) == schema_before
        counts = [connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES]
        assert counts == [CARDS + 1, 3 * CARDS, CARDS + 7]
        history = connection.execute(
            text("SELECT amount FROM giftcard_transactions WHERE giftcard_id = :id ORDER BY id"),
            {"id": history_card},
        )
        assert [row[0] for row in history] == [1000, 1, -1, 1, -1, 1, -1]
    vault = CodeVault.from_settings(load_settings(env))
    lines = (tmp_path / "codes.tsv").read_text().splitlines()
    assert sorted({line.split("\t")[0] for line in lines}) == ["PERSONAL", "PHYSICAL"]
    assert len(lines) == 2 * CARDS
    with engine.connect() as connection:
        for line in lines:
            code_type, code = line.split("\t")
            found = connection.execute(
                text("SELECT code_type, ciphertext, key_id FROM giftcard_codes WHERE lookup_hash = :h"),
                {"h": vault.lookup_hashes(code)[0]},
            ).all()
            assert len(found) == 1 and found[0][0] == code_type
            assert vault.open(found[0][1], found[0][2], code_type) == code
    assert ledger.verify(engine, datetime.now(UTC)) == (CARDS + 1, [])

    again = _load(env, tmp_path / "again.tsv")

    assert again.returncode != 0 and "already holds cards" in again.stderr
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM giftcards")).scalar_one() == CARDS + 1
        assert sorted(connection.execute(SCHEMA, {"t": TABLES}).all()) == schema_before
    engine.dispose()
