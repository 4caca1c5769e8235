"""`scripts/bench steps`: a debit's CPU by step, in process, on a scratch database."""

from __future__ import annotations

import os
import re
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bench_steps  # the scripts import each other by module name


def test_each_step_is_timed_once_a_debit_and_the_ledger_checked(tmp_path, capsys):
    # given a small SQLite database, when a round of debits is measured step by step
    assert (
        bench_steps.main(
            ["--databases", "sqlite", "--cards", "20", "--debits", "30", "--rounds", "2"], tmp_path
        )
        == 0
    )

    # then one line gives each step's CPU and its share, the rest, and the total they add up to (the
    # median of two rounds is their mean, which adds up as each round does)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("CPU per debit")]
    parts = re.fullmatch(r"CPU per debit by step, sqlite: (.*); total (\d+\.\d{3}) ms", line)
    assert parts is not None, line
    steps = re.findall(r"([a-z ]+) (\d+\.\d{3}) ms \(\d+%\)(?:, |$)", parts.group(1))
    assert [name for name, _ in steps] == [*bench_steps.STEPS, "rest"]
    assert all(float(ms) > 0 for name, ms in steps if name != "rest")
    assert sum(float(ms) for _, ms in steps) == pytest.approx(float(parts.group(2)), abs=0.004)


def test_the_bench_leaves_its_thread_on_the_cpus_it_had(tmp_path):
    allowed = os.sched_getaffinity(0)
    assert (
        bench_steps.main(
            ["--databases", "sqlite", "--cards", "5", "--debits", "3", "--rounds", "1"], tmp_path
        )
        == 0
    )
    assert os.sched_getaffinity(0) == allowed


def test_the_steps_are_put_back_after():
    from app.store import moves

    original = moves.move
    clock = bench_steps.StepClock()
    with bench_steps.steps_timed(clock):
        assert moves.move is not original
    assert moves.move is original


def test_a_missing_step_fails_the_bench(tmp_path, monkeypatch, capsys):
    # given a step that no debit reaches any more (the code renamed or moved, say)
    monkeypatch.setattr(bench_steps.StepClock, "timed", lambda self, step, function: function)

    # when measured, then the bench says which step never ran, and fails
    assert (
        bench_steps.main(
            ["--databases", "sqlite", "--cards", "5", "--debits", "3", "--rounds", "1"], tmp_path
        )
        == 1
    )
    assert "code read: ran 0 times for 3 debits, not 3" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--databases", "oracle"], ["--debits", "0"]])
def test_bad_options_are_refused(argv):
    with pytest.raises(SystemExit) as exited:
        bench_steps.parse_args(argv)
    assert exited.value.code == 2


@pytest.mark.postgres
def test_on_postgresql_plain_debits_and_the_full_path_are_measured_apart(postgres_url, tmp_path, capsys):
    # given PostgreSQL (postgres_url: reachable), when a round is measured there
    argv = ["--databases", "postgresql", "--cards", "20", "--debits", "30", "--rounds", "1"]
    assert bench_steps.main(argv, tmp_path) == 0

    # then one line gives the plain debits' one call, the other the full path's steps
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("CPU per debit")]
    assert [re.sub(r"\d+\.\d{3} ms \(\d+%\)", "X", line.split("; total")[0]) for line in lines] == [
        "CPU per debit by step, postgresql, plain: plain call X, rest X",
        "CPU per debit by step, postgresql, full path: code read X, lock X, move X, commit X, rest X",
    ]


@pytest.mark.postgres
def test_a_plain_call_that_leaves_its_debit_fails_the_bench(postgres_url, tmp_path, monkeypatch, capsys):
    # given plain calls that leave every debit to the full path
    from app.store.plain_debits import PlainDebitStore

    monkeypatch.setattr(PlainDebitStore, "debit", lambda self, call: None)

    # when measured on PostgreSQL, then the bench says the full path ran, and fails
    argv = ["--databases", "postgresql", "--cards", "5", "--debits", "3", "--rounds", "1"]
    assert bench_steps.main(argv, tmp_path) == 1
    assert "code read: ran 3 times for 3 debits, not 0" in capsys.readouterr().err
