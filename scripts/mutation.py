"""Mutation testing of the money and secrecy modules with mutmut, one module at a time.

Each module is mutated in a scratch copy of the project and tested with the few test files that
exercise it, on SQLite (the default) or on PostgreSQL (``--database postgresql``: the tests that
run on both databases run their PostgreSQL case, on the server of ``GIFTCARDS_TEST_POSTGRES_URL``;
the others as always). Prints, per module, the mutants killed, survived and judged equivalent
(listed in ``scripts/mutation-equivalents.txt`` with a reason) and the kill rate, then each
survivor not listed there, as a line to fix with a test or to list with its reason, and each
line listed for the modules run that no survivor matched (stale, or killed now).

    python scripts/mutation.py [--database sqlite|postgresql] [MODULE ...]   # none: all of them
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "scripts" / "mutation-equivalents.txt"
MUTMUT = Path(sys.executable).with_name("mutmut")
JOBS = os.environ.get("MUTATION_JOBS", "1")  # mutants tested at once

# the test files that exercise the ledger's modules (tests/ prefix left out)
LEDGER_TESTS = [
    "graphql/test_money_paths.py",
    "graphql/test_capture_and_cancel.py",
    "graphql/test_ledger_rules.py",
    "graphql/test_transactions.py",
    "graphql/test_ledger_edges.py",
    "graphql/test_replays_and_refusals.py",
    "graphql/test_balance_ceiling.py",
    "test_pin_checks.py",
    "test_guards.py",
    "domain/test_ledger.py",
    "test_debit_statements.py",  # what a debit sends, and when it commits (PostgreSQL)
    "graphql/test_locations.py",
    "graphql/test_auth_codes.py",
    "graphql/test_payment_tokens.py",
    "graphql/test_store_scoping.py",
    "graphql/test_store_isolation.py",
    "graphql/test_program_cards.py",
    "test_batching.py",
]
# the balance rules also rule on cards issued and loaded, and on programs' limits
BALANCES_TESTS = [
    *LEDGER_TESTS,
    "domain/test_balances.py",
    "graphql/test_giftcard_add_value.py",
    "graphql/test_programs.py",
    "graphql/test_program_attacks.py",
]
# the addressing also counts the wrong PIN that locks a code (the metrics' count of lockouts)
ADDRESSING_TESTS = [*LEDGER_TESTS, "test_metrics.py"]
# module → the test files that exercise it
MODULES = {
    "domain/money": [
        "domain/test_money.py",
        "domain/test_money_edges.py",
        "graphql/test_money_paths.py",
        "graphql/test_balance_ceiling.py",
    ],
    "domain/codes": [
        "domain/test_codes.py",
        "domain/test_code_edges.py",
        "domain/test_keys.py",
        "graphql/test_money_paths.py",
        "graphql/test_giftcard_query.py",
    ],
    "policy": [
        "test_policy.py",
        "test_policy_edges.py",
        "graphql/test_giftcard_query.py",
        "graphql/test_money_paths.py",
    ],
    "policy_file": [
        "test_policy.py",
        "test_policy_edges.py",
        "graphql/test_giftcard_query.py",
        "graphql/test_money_paths.py",
    ],
    "store/ledger": [
        "store/test_ledger.py",
        "graphql/test_money_paths.py",
        "test_pin_checks.py",
        "graphql/test_giftcards_code_filter.py",  # code_matches with several code types
        "graphql/test_program_cards.py",  # a balance change's conditions and values (its program's)
        "graphql/test_auth_codes.py",  # add_authorization
    ],
    "domain/batching": ["test_batching.py", "test_debit_statements.py"],
    "domain/ledger": LEDGER_TESTS,
    "domain/addressing": ADDRESSING_TESTS,
    "domain/balances": BALANCES_TESTS,
    "domain/idempotency": [
        "graphql/test_idempotency.py",
        "graphql/test_replays_and_refusals.py",
        "graphql/test_money_paths.py",
        "graphql/test_capture_and_cancel.py",
        "domain/test_idempotency.py",
    ],
    "domain/authorizations": [
        "domain/test_authorizations.py",
        "graphql/test_auth_codes.py",
        "graphql/test_locations.py",  # where a capture or cancel happened (located)
        "store/test_ledger.py",
    ],
    "domain/plain_debits": [  # what they leave to the full path runs it: the ledger's tests too
        "test_plain_debits.py",
        "test_debit_statements.py",
        "graphql/test_money_paths.py",
        "graphql/test_transactions.py",
        "graphql/test_store_scoping.py",
    ],
    "store/plain_debits": ["test_plain_debits.py", "test_debit_statements.py", "graphql/test_money_paths.py"],
    "graphql/execution": [  # leaves read in place, selections kept: every answer's fields
        "graphql/test_execution.py",
        "graphql/test_known_documents.py",
        "graphql/test_giftcard_query.py",
        "graphql/test_partial_results.py",
        "graphql/test_money_paths.py",
    ],
    "domain/payment_tokens": [
        "domain/test_payment_tokens.py",
        "graphql/test_payment_tokens.py",
        "graphql/test_payment_token_edges.py",
        "store/test_payment_tokens.py",
    ],
}
COPIED = ["app", "tests", "permissions.yaml", "schema.graphql", "pyproject.toml"]
# The other database's case of each test that runs on both is left out.
LEAVE_OUT = {"sqlite": "not postgresql", "postgresql": "not sqlite"}
PYTEST_ARGS = ["-m", "not server and not browser", "-p", "no:cacheprovider"]
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
ROW = "{:<20} {:>7} {:>7} {:>8} {:>10} {:>9}"


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def _configure(work: Path, module: str, database: str) -> None:
    """The scratch copy, with mutmut told what to mutate and which tests to run."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy2(source, work / name)
    tests = [f"tests/{path}" for path in MODULES[module] if (ROOT / "tests" / path).exists()]
    with (work / "pyproject.toml").open("a") as config:
        config.write(
            "\n[tool.mutmut]\n"
            'source_paths = ["app"]\n'
            f'only_mutate = ["app/{module}.py"]\n'
            'also_copy = ["permissions.yaml", "schema.graphql"]\n'
            f"pytest_add_cli_args = {_toml_list(['-k', LEAVE_OUT[database], *PYTEST_ARGS])}\n"
            f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        )


def _mutmut(work: Path, *args: str) -> str:
    done = subprocess.run([str(MUTMUT), *args], cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"mutmut {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return done.stdout


def _function(mutant: str) -> str:
    """``app.domain.ledger.xǁLedgerǁ_address__mutmut_3`` → ``Ledger._address``."""
    mangled = mutant.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]
    return mangled[2:] if mangled.startswith("x_") else ".".join(mangled.split("ǁ")[1:])


def _change(diff: str) -> str:
    """The lines a mutant removes and adds, each run of whitespace as one space: ``old ⟶ new``."""
    lines = [line for line in diff.splitlines() if line[:1] in "-+" and line[:3] not in ("---", "+++")]
    removed = " ".join(line[1:].strip() for line in lines if line.startswith("-"))
    added = " ".join(line[1:].strip() for line in lines if line.startswith("+"))
    return re.sub(r"\s+", " ", f"{removed} ⟶ {added}").strip()


def _fingerprint(function: str, change: str) -> str:
    """Names a mutant by its function and its change (not by mutmut's number, which shifts when
    the function changes, nor by line numbers or the lines around it, so that an edit elsewhere in
    the function keeps the equivalents listed for it)."""
    return hashlib.sha256(f"{function}\n{change}".encode()).hexdigest()[:10]


def _equivalents(database: str) -> dict[tuple[str, str], str]:
    """(module, fingerprint) → reason, from lines ``module function fingerprint change — reason``; a
    line whose module ends ``@sqlite`` (or ``@postgresql``) holds only on that database."""
    found = {}
    for line in EQUIVALENTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            named, _, fingerprint, rest = line.split(maxsplit=3)
            module, _, only_on = named.partition("@")
            if only_on in ("", database):
                found[module, fingerprint] = rest.rpartition(" — ")[2]
    return found


@dataclass(frozen=True)
class Survivor:
    function: str
    fingerprint: str
    change: str
    status: str


@dataclass
class Judged:
    equivalent: int  # survivors listed as equivalent
    unexplained: list[str]  # a line for each survivor not listed
    unmet: list[str]  # listed equivalents of the module that no survivor matched


def judge(module: str, survivors: list[Survivor], equivalents: dict[tuple[str, str], str]) -> Judged:
    """The survivors against the equivalents listed; a listed one no survivor matched is stale (its
    code changed) or killed now: either way its line has to go, or to be judged again."""
    judged = Judged(0, [], [])
    for survivor in survivors:
        if (module, survivor.fingerprint) in equivalents:
            judged.equivalent += 1
        else:
            judged.unexplained.append(
                f"{module} {survivor.function} {survivor.fingerprint} {survivor.change}  ({survivor.status})"
            )
    met = {survivor.fingerprint for survivor in survivors}
    judged.unmet = [
        f"{module} {fingerprint} — {reason}"
        for (listed, fingerprint), reason in equivalents.items()
        if listed == module and fingerprint not in met
    ]
    return judged


def run(module: str, database: str) -> tuple[dict[str, int], Judged]:
    """Counts for the table, and the survivors judged against the equivalents listed."""
    with tempfile.TemporaryDirectory(prefix="giftcards-mutation-") as scratch:
        work = Path(scratch)
        _configure(work, module, database)
        _mutmut(work, "run", "--max-children", JOBS)
        prefix = "app." + module.replace("/", ".") + "."
        statuses = dict(
            line.strip().rsplit(": ", 1)
            for line in _mutmut(work, "results", "--all", "true").splitlines()
            if line.strip().startswith(prefix)
        )
        survivors = []
        for mutant, status in sorted(statuses.items()):
            if status not in KILLED:
                function, change = _function(mutant), _change(_mutmut(work, "show", mutant))
                survivors.append(Survivor(function, _fingerprint(function, change), change, status))
    judged = judge(module, survivors, _equivalents(database))
    counts = {
        "mutants": len(statuses),
        "killed": len(statuses) - len(survivors),
        "survived": len(judged.unexplained),
        "equivalent": judged.equivalent,
    }
    return counts, judged


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=sorted(LEAVE_OUT), default="sqlite")
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"of: {', '.join(MODULES)}")
    args = parser.parse_args(argv)
    modules = args.modules or list(MODULES)
    unknown = [module for module in modules if module not in MODULES]
    if unknown:
        sys.exit(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    rows: list[tuple[str, dict[str, int]]] = []
    survivors: list[str] = []
    unmet: list[str] = []
    for module in modules:
        print(f"mutating app/{module}.py, tested on {args.database} …", flush=True)
        counts, judged = run(module, args.database)
        rows.append((module, counts))
        survivors += judged.unexplained
        unmet += judged.unmet
    print("\n" + ROW.format("module", "mutants", "killed", "survived", "equivalent", "kill rate"))
    for module, counts in rows:
        counted = counts["mutants"] - counts["equivalent"]
        rate = f"{100 * counts['killed'] / counted:.1f} %" if counted else "-"
        print(ROW.format(module, *counts.values(), rate))
    if survivors:
        print(
            "\nSurvivors (kill each with a test, or list it in scripts/mutation-equivalents.txt "
            "followed by ' — reason'):"
        )
        print("\n".join(survivors))
    if unmet:
        print(
            f"\nListed as equivalent, but no survivor on {args.database} matched (the code changed, or a "
            "test kills it now): remove each line from scripts/mutation-equivalents.txt, or judge it again:"
        )
        print("\n".join(unmet))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
