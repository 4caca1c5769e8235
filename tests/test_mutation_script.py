"""`scripts/mutation` tests each database's case of the tests and honours equivalents judged for
one database only on that database."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import mutation

LINES = """# a comment
domain/batching Batcher.run aaaaaaaaaa x ⟶ y — equivalent everywhere
domain/batching@sqlite Batcher._card bbbbbbbbbb a ⟶ b — the same on SQLite only
domain/batching@postgresql Batcher.pending cccccccccc c ⟶ d — the same on PostgreSQL only
"""


@pytest.fixture
def equivalents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = tmp_path / "equivalents.txt"
    listed.write_text(LINES)
    monkeypatch.setattr(mutation, "EQUIVALENTS", listed)


@pytest.mark.usefixtures("equivalents")
def test_an_equivalent_judged_for_one_database_counts_on_that_one_alone():
    assert mutation._equivalents("sqlite") == {
        ("domain/batching", "aaaaaaaaaa"): "equivalent everywhere",
        ("domain/batching", "bbbbbbbbbb"): "the same on SQLite only",
    }
    assert mutation._equivalents("postgresql") == {
        ("domain/batching", "aaaaaaaaaa"): "equivalent everywhere",
        ("domain/batching", "cccccccccc"): "the same on PostgreSQL only",
    }


@pytest.mark.parametrize(
    ("database", "left_out"), [("sqlite", "not postgresql"), ("postgresql", "not sqlite")]
)
def test_the_scratch_copy_runs_the_modules_tests_on_the_chosen_database(tmp_path, database, left_out):
    mutation._configure(tmp_path, "domain/ledger", database)
    config = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert config["only_mutate"] == ["app/domain/ledger.py"]
    assert config["pytest_add_cli_args"][:2] == ["-k", left_out]
    assert "tests/test_debit_statements.py" in config["pytest_add_cli_args_test_selection"]


def test_an_unknown_database_is_refused(capsys):
    with pytest.raises(SystemExit) as refused:
        mutation.main(["--database", "oracle", "domain/money"])
    assert refused.value.code == 2
    assert "invalid choice: 'oracle'" in capsys.readouterr().err


def test_survivors_are_judged_and_listed_equivalents_no_survivor_met_are_named():
    # given two equivalents listed for the module (one of them now killed, or its code gone), one
    # for another module, and two survivors: one listed, one not
    listed = {
        ("domain/batching", "aaaaaaaaaa"): "equivalent everywhere",
        ("domain/batching", "dddddddddd"): "a line whose mutant is gone",
        ("domain/ledger", "eeeeeeeeee"): "another module's",
    }
    survivors = [
        mutation.Survivor("Batcher.run", "aaaaaaaaaa", "x ⟶ y", "survived"),
        mutation.Survivor("Batcher._lead", "ffffffffff", "a ⟶ b", "survived"),
    ]

    # when judged, then the listed one counts as equivalent, the other is a line to act on, and the
    # listed line that no survivor met is named for removal
    judged = mutation.judge("domain/batching", survivors, listed)
    assert judged.equivalent == 1
    assert judged.unexplained == ["domain/batching Batcher._lead ffffffffff a ⟶ b  (survived)"]
    assert judged.unmet == ["domain/batching dddddddddd — a line whose mutant is gone"]
