"""`scripts/bench instructions`: a request's instructions, counted under callgrind (valgrind itself
is not run here: the counted process and the arithmetic around it are)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bench_instructions  # the scripts import each other by module name
from bench_lookup import BenchError

SCRIPT = ROOT / "scripts" / "bench_instructions.py"


def test_the_count_is_read_from_what_valgrind_prints():
    printed = (
        "==4711== Events    : Ir\n==4711== Collected : 7831944109\n==4711==\n"
        "==4711== I   refs:      7,831,944,109\n"
    )
    assert bench_instructions.collected(printed) == 7_831_944_109
    with pytest.raises(BenchError, match="no instruction count"):
        bench_instructions.collected("Traceback (most recent call last): ...")


def test_a_request_costs_the_difference_of_the_two_runs_over_the_requests_between_them():
    assert bench_instructions.per_request(1_000_000, 2_500_000, 500) == 3_000
    with pytest.raises(BenchError, match="not more than"):
        bench_instructions.per_request(2_500_000, 2_500_000, 500)


@pytest.mark.parametrize(
    "argv", [["--kinds", "lookups"], ["--kinds", ""], ["--requests", "0"], ["--cards", "0"]]
)
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        bench_instructions.parse_args(argv)
    assert exited.value.code == 2
    assert "--" in capsys.readouterr().err


def test_the_counted_process_drives_each_kind_and_fails_on_a_refused_request(tmp_path):
    # given demo cards, each kind's bodies and token (as a counted run gets them)
    env = bench_instructions.write_inputs(tmp_path, 30)
    inputs = json.loads((tmp_path / "inputs.json").read_text())
    assert {kind: len(inputs[kind]["bodies"]) > 0 for kind in bench_instructions.KINDS} == {
        "lookup": True,
        "debit": True,
    }

    def counted(kind: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(SCRIPT), "--drive", str(tmp_path), "--kinds", kind, "--count", "3"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    # when each kind is driven, then every request is answered without errors
    for kind in bench_instructions.KINDS:
        done = counted(kind)
        assert done.returncode == 0, done.stderr[-2000:]
    # and the debits were written: one USE row of 0.01 each (the warm-up's and the counted ones)
    with closing(sqlite3.connect(tmp_path / "giftcards.db")) as database:
        debits = database.execute(
            "SELECT count(*), sum(amount) FROM giftcard_transactions WHERE trans_type = 'USE'"
        ).fetchone()
    expected = bench_instructions.WARMUP + 3
    assert debits == (expected, -expected)

    # when a token the server refuses is used, then the counted run fails, saying why
    inputs["lookup"]["token"] = "not-a-token"
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    refused = counted("lookup")
    assert refused.returncode == 1
    assert "a request was answered 401" in refused.stderr
