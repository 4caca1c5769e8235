"""Transaction benchmark: USE debits of 0.01 through ``giftcardTransAdd``, on SQLite and PostgreSQL.

For each database in turn (a fresh SQLite file under ``bench-results/``; a fresh PostgreSQL
database ``giftcards_bench_<random>`` created on the server of ``--postgres-url`` and dropped at
the end): migrate, load demo cards (``giftcards demo-data``), mint a ``pos`` token for the debits
and an ``admin`` token, start ``giftcards serve`` with 2 workers on loopback, fund one card with
an ADD of 100000.00 (the hot card), check a few debits by hand (each succeeds and takes exactly
0.01 off the balance it reports), time a few sequential debits on one warm connection, then run
wrk with ``scripts/wrk_tx.lua``:

- ``hot``: every connection debits the hot card by its PHYSICAL code;
- ``hot-pin``: the same on the well-known card whose PHYSICAL code has a PIN (funded alike), each
  debit sending the PIN, so the cost of the PIN check shows beside ``hot``;
- ``spread``: the debits rotate over the PHYSICAL codes of all the loaded cards.

A warm-up of each scenario, then ``--runs`` measured runs of each (hot, spread, hot, …). After a
database's runs the server is stopped and ``giftcards ledger verify`` must come back clean; the
number of USE rows in the ledger is compared with the debits wrk saw answered. Prints a table of
median debits/s, p50 and p99 per database and scenario, and writes ``results.json`` into the
run's directory. Exits non-zero when a run saw non-2xx answers, socket errors, GraphQL errors or
unexpected answers, or when the ledger does not verify. Run it through ``scripts/bench tx``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench_lookup import (
    _UNIT_MS,
    BIN,
    KEEPALIVE_PROBES,
    REPO,
    SCRIPTS,
    BenchError,
    Server,
    cpu_seconds,
    keepalive_ms,
    parse_seconds,
    parse_wrk,
    post,
    run,
    server_env,
    start,
    stop,
    wait_ready,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.demo import WELL_KNOWN

DEBIT = (
    "mutation Debit($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) "
    "{ id giftcardId status amount balance availableBalance balanceBefore balanceAfter } }"
)
AMOUNT = "-0.01"
HOT_FUNDING = "100000.00"
SAMPLE_DEBITS = 5  # hand-checked debits per scenario before measuring
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
DATABASES = ("sqlite", "postgresql")
SCENARIOS = ("hot", "hot-pin", "spread")
PIN_CARD = next(card for card in WELL_KNOWN if card.pin and card.physical)
_EXTRA = {
    "graphql_errors": re.compile(r"^GraphQL errors: (\d+)$", re.M),
    "unexpected_answers": re.compile(r"^Unexpected answers: (\d+)$", re.M),
}
_FIRST_PROBLEM = re.compile(r"^First problem: (.*)$", re.M)
_MAX_LATENCY = re.compile(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)\s", re.M)


@dataclass
class TxRun:
    database: str
    scenario: str
    debits_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    graphql_errors: int
    unexpected_answers: int
    first_problem: str | None = None
    cpu_ms_per_debit: float | None = None
    warmup: bool = False

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors + self.graphql_errors + self.unexpected_answers


@dataclass
class DatabaseResult:
    database: str
    cards: int
    hot_card_id: str = ""
    single_debit_ms: float | None = None  # median of sequential debits on one warm connection
    runs: list[TxRun] = field(default_factory=list)
    ledger_verify: str = ""
    ledger_clean: bool = False
    use_rows: int | None = None
    debits_answered: int | None = None  # samples plus every 2xx answer wrk counted


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench tx", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration",
        type=parse_seconds,
        default=parse_seconds(os.environ.get("BENCH_DURATION", "10s")),
        help="length of each measured run (default 10s, or $BENCH_DURATION)",
    )
    parser.add_argument(
        "--warmup",
        type=parse_seconds,
        default=parse_seconds("3s"),
        help="unmeasured load per scenario first (default 3s)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        choices=range(1, 10),
        metavar="N",
        help="measured runs per database and scenario (default 3)",
    )
    parser.add_argument("--cards", type=int, default=10_000, help="random cards to load (default 10000)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument(
        "--databases",
        default=",".join(DATABASES),
        help="comma-separated, from sqlite,postgresql (default both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("GIFTCARDS_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="a database on the (loopback) server to create the bench database "
        "from (default: $GIFTCARDS_BENCH_POSTGRES_URL or " + DEFAULT_POSTGRES_URL + ")",
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.databases.split(",") if name.strip()]
    if not chosen or any(name not in DATABASES for name in chosen):
        parser.error(f"--databases: choose from {','.join(DATABASES)}")
    args.databases = chosen
    if args.cards < 2:
        parser.error("--cards: at least 2")
    return args


# --- databases -------------------------------------------------------------------------------


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A fresh database on the server of ``base_url``, dropped on the way out."""
    base = make_url(base_url)
    if base.get_backend_name() != "postgresql":
        raise BenchError(f"--postgres-url: not a PostgreSQL URL: {base.render_as_string()}")
    if (base.host or "") not in LOOPBACK_HOSTS:
        raise BenchError(f"--postgres-url: the benchmark runs on loopback only, not {base.host!r}")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"giftcards_bench_{uuid.uuid4().hex[:10]}"
    created = False
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            raise BenchError(
                f"cannot create a database on {base.render_as_string()}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from None
        created = True
        print(f"bench tx: created PostgreSQL database {name}", file=sys.stderr)
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        if created:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"bench tx: dropped PostgreSQL database {name}", file=sys.stderr)
        admin.dispose()


@contextmanager
def database(kind: str, work: Path, args: argparse.Namespace) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / 'giftcards.db'}"
    else:
        with postgres_database(args.postgres_url) as url:
            yield url


def physical_codes(codes_file: Path) -> list[str]:
    """The PHYSICAL codes of the random demo cards (the well-known ones are left out)."""
    well_known = {card.physical for card in WELL_KNOWN if card.physical}
    codes = []
    with codes_file.open() as lines:
        for line in lines:
            code_type, _, code = line.rstrip("\n").partition("\t")
            if code_type == "PHYSICAL" and code and code not in well_known:
                codes.append(code)
    return codes


def use_rows(url: str) -> int:
    """How many USE transactions the ledger holds."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM giftcard_transactions WHERE trans_type = 'USE'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


# --- requests --------------------------------------------------------------------------------


def debit_body(
    code: str, amount: str = AMOUNT, trans_type: str = "USE", pin: str | None = None
) -> dict[str, Any]:
    trans = {"codeType": "PHYSICAL", "code": code, "transType": trans_type, "amount": amount}
    if pin is not None:
        trans["pin"] = pin
    return {"query": DEBIT, "variables": {"trans": trans}}


def transact(
    server: Server, token: str, code: str, amount: str, trans_type: str, pin: str | None = None
) -> dict[str, Any]:
    reply = post(server, debit_body(code, amount, trans_type, pin), token)
    found = (reply.get("data") or {}).get("giftcardTransAdd")
    if reply.get("errors") or not found or not found.get("balance"):
        raise BenchError(f"a {trans_type} of {amount} failed: {json.dumps(reply)[:400]}")
    return dict(found)


def fund_hot_card(server: Server, admin_token: str, code: str, pin: str | None = None) -> str:
    """ADD HOT_FUNDING to a hot card; returns its id."""
    entry = transact(server, admin_token, code, HOT_FUNDING, "ADD", pin)
    before, after = Decimal(entry["balanceBefore"]), Decimal(entry["balanceAfter"])
    if entry["status"] != "COMPLETED" or after - before != Decimal(HOT_FUNDING):
        raise BenchError(f"funding the hot card went wrong: {json.dumps(entry)}")
    return str(entry["giftcardId"])


def check_debits(server: Server, token: str, codes: list[str], pin: str | None = None) -> None:
    """Each debit completes, takes exactly 0.01 and reports the balance after it."""
    for code in codes:
        entry = transact(server, token, code, AMOUNT, "USE", pin)
        before, after = Decimal(entry["balanceBefore"]), Decimal(entry["balanceAfter"])
        if (
            entry["status"] != "COMPLETED"
            or Decimal(entry["amount"]) != Decimal(AMOUNT)
            or after != before + Decimal(AMOUNT)
            or Decimal(entry["balance"]) != after
        ):
            raise BenchError(f"a sample debit did not take exactly {AMOUNT}: {json.dumps(entry)}")


# --- load ------------------------------------------------------------------------------------


def wrk(
    server: Server,
    where: tuple[str, str],
    seconds: int,
    args: argparse.Namespace,
    load: tuple[Path, str],
    *,
    warmup: bool = False,
) -> TxRun:
    """wrk against ``server`` for ``seconds``: ``where`` is (database, scenario), ``load`` the
    request bodies' file and the bearer token."""
    (database_name, scenario), (bodies, token) = where, load
    cpu_before = cpu_seconds(server.process.pid)
    command = [
        "wrk",
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        "--latency",
        f"--script={SCRIPTS / 'wrk_tx.lua'}",
        server.url + "/graphql",
        "--",
        str(bodies),
        token,
    ]
    output = run(command, dict(os.environ), timeout=seconds + 60, capture=True)
    cpu_after = cpu_seconds(server.process.pid)
    base = parse_wrk(server.name, output)
    extra = {}
    for name, pattern in _EXTRA.items():
        match = pattern.search(output)
        if not match:
            raise BenchError(f"wrk_tx.lua did not report {name}:\n{output}")
        extra[name] = int(match.group(1))
    first = _FIRST_PROBLEM.search(output)
    slowest = _MAX_LATENCY.search(output)
    if not slowest:
        raise BenchError(f"cannot read wrk's maximum latency:\n{output}")
    result = TxRun(
        database=database_name,
        scenario=scenario,
        debits_per_second=base.requests_per_second,
        p50_ms=base.p50_ms,
        p99_ms=base.p99_ms,
        max_ms=float(slowest.group(1)) * _UNIT_MS[slowest.group(2)],
        requests=base.requests,
        non_2xx=base.non_2xx,
        socket_errors=base.socket_errors,
        graphql_errors=extra["graphql_errors"],
        unexpected_answers=extra["unexpected_answers"],
        first_problem=first.group(1) if first else None,
        warmup=warmup,
    )
    if cpu_before is not None and cpu_after is not None and result.requests:
        result.cpu_ms_per_debit = (cpu_after - cpu_before) * 1000 / result.requests
    return result


def describe(run_: TxRun) -> str:
    text_ = (
        f"{run_.debits_per_second:.0f} debits/s, p50 {run_.p50_ms:.1f} ms, p99 {run_.p99_ms:.1f} ms, "
        f"max {run_.max_ms:.0f} ms, "
        f"{run_.requests} answered"
    )
    if run_.failures:
        text_ += (
            f" — non-2xx {run_.non_2xx}, socket errors {run_.socket_errors}, GraphQL errors "
            f"{run_.graphql_errors}, unexpected {run_.unexpected_answers}; first: {run_.first_problem}"
        )
    return text_


def bench_database(kind: str, root: Path, args: argparse.Namespace) -> DatabaseResult:
    work = root / kind
    work.mkdir()
    result = DatabaseResult(database=kind, cards=args.cards)
    with database(kind, work, args) as url:
        env = server_env(url, work)
        codes_file = work / "codes.tsv"
        print(f"bench tx [{kind}]: loading {args.cards} cards", file=sys.stderr)
        run([str(BIN / "giftcards"), "db", "upgrade"], env, timeout=120)
        run(
            [
                str(BIN / "giftcards"),
                "demo-data",
                "--cards",
                str(args.cards),
                "--codes-file",
                str(codes_file),
            ],
            env,
            timeout=1800,
        )
        codes = physical_codes(codes_file)
        if len(codes) != args.cards:
            raise BenchError(f"{codes_file}: expected {args.cards} PHYSICAL codes, found {len(codes)}")
        pos_token = run(
            [str(BIN / "giftcards"), "token", "--sub", "bench-pos", "--role", "pos", "--ttl", "2h"],
            env,
            timeout=60,
            capture=True,
        ).strip()
        admin_token = run(
            [str(BIN / "giftcards"), "token", "--sub", "bench-admin", "--role", "admin", "--ttl", "2h"],
            env,
            timeout=60,
            capture=True,
        ).strip()
        rng = random.Random(args.cards)
        rng.shuffle(codes)
        hot_code = codes[0]
        bodies = {scenario: work / f"{scenario}-bodies.jsonl" for scenario in SCENARIOS}
        bodies["hot"].write_text(json.dumps(debit_body(hot_code)) + "\n")
        assert PIN_CARD.physical is not None
        bodies["hot-pin"].write_text(json.dumps(debit_body(PIN_CARD.physical, pin=PIN_CARD.pin)) + "\n")
        bodies["spread"].write_text("".join(json.dumps(debit_body(code)) + "\n" for code in codes))

        server = start(
            f"{kind}",
            [str(BIN / "giftcards"), "serve", "--workers", str(args.workers)],
            env,
            work / "server.log",
        )
        answered = 0
        try:
            wait_ready(server, pos_token, "/healthz")
            print(f"bench tx [{kind}]: server on :{server.port} (pid {server.process.pid})", file=sys.stderr)
            result.hot_card_id = fund_hot_card(server, admin_token, hot_code)
            fund_hot_card(server, admin_token, PIN_CARD.physical, PIN_CARD.pin)
            check_debits(server, pos_token, [hot_code] * SAMPLE_DEBITS)
            check_debits(server, pos_token, [PIN_CARD.physical] * SAMPLE_DEBITS, PIN_CARD.pin)
            check_debits(server, pos_token, codes[1 : SAMPLE_DEBITS + 1])
            answered += 3 * SAMPLE_DEBITS
            print(
                f"bench tx [{kind}]: hot card {result.hot_card_id} and the PIN card funded with "
                f"{HOT_FUNDING}; {3 * SAMPLE_DEBITS} sample debits each took {AMOUNT}",
                file=sys.stderr,
            )
            result.single_debit_ms = keepalive_ms(server, debit_body(codes[-1]), pos_token)
            answered += KEEPALIVE_PROBES + 1
            print(
                f"bench tx [{kind}]: one debit on a warm connection, unloaded, takes "
                f"{result.single_debit_ms:.1f} ms",
                file=sys.stderr,
            )
            for scenario in SCENARIOS:
                warm = wrk(
                    server, (kind, scenario), args.warmup, args, (bodies[scenario], pos_token), warmup=True
                )
                result.runs.append(warm)
                print(f"bench tx [{kind}]: warm-up {scenario}: {describe(warm)}", file=sys.stderr)
            for index in range(args.runs):
                for scenario in SCENARIOS:
                    measured = wrk(
                        server, (kind, scenario), args.duration, args, (bodies[scenario], pos_token)
                    )
                    result.runs.append(measured)
                    print(
                        f"bench tx [{kind}]: run {index + 1}/{args.runs} {scenario}: {describe(measured)}",
                        file=sys.stderr,
                    )
        finally:
            stop(server)
        # Only answers without a problem are debits wrk saw succeed.
        answered += sum(r.requests - r.failures for r in result.runs)
        result.debits_answered = answered

        verify = subprocess.run(
            [str(BIN / "giftcards"), "ledger", "verify"],
            env=env,
            timeout=600,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        result.ledger_verify = verify.stdout.strip()
        result.ledger_clean = verify.returncode == 0
        print(f"bench tx [{kind}]: {result.ledger_verify} (exit {verify.returncode})", file=sys.stderr)
        result.use_rows = use_rows(url)
    return result


# --- report ----------------------------------------------------------------------------------


def summarise(results: list[DatabaseResult]) -> dict[str, dict[str, dict[str, float]]]:
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for result in results:
        for scenario in SCENARIOS:
            mine = [r for r in result.runs if r.scenario == scenario and not r.warmup]
            summary.setdefault(result.database, {})[scenario] = {
                "debits_per_second": statistics.median(r.debits_per_second for r in mine),
                "p50_ms": statistics.median(r.p50_ms for r in mine),
                "p99_ms": statistics.median(r.p99_ms for r in mine),
                "max_ms": max(r.max_ms for r in mine),
                "cpu_ms_per_debit": statistics.median(r.cpu_ms_per_debit or 0.0 for r in mine),
                "failures": sum(r.failures for r in mine),
            }
    return summary


def print_table(results: list[DatabaseResult], summary: dict[str, dict[str, dict[str, float]]]) -> None:
    print(
        f"\n{'database':<11} {'scenario':<8} {'debits/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'CPU ms/debit':>13} {'errors':>7}   runs (debits/s)"
    )
    for result in results:
        for scenario, row in summary[result.database].items():
            each = ", ".join(
                f"{r.debits_per_second:.0f}" for r in result.runs if r.scenario == scenario and not r.warmup
            )
            print(
                f"{result.database:<11} {scenario:<8} {row['debits_per_second']:>9.0f} "
                f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['max_ms']:>8.0f} "
                f"{row['cpu_ms_per_debit']:>13.3f} "
                f"{int(row['failures']):>7}   {each}"
            )
    print()
    for result in results:
        rows = summary[result.database]
        print(
            f"ratio hot-pin/hot {result.database}: "
            f"{rows['hot-pin']['debits_per_second'] / max(rows['hot']['debits_per_second'], 1e-9):.2f} "
            "(debits/s with a PIN checked against the same card load without one)"
        )
    for result in results:
        if result.single_debit_ms is not None:
            print(
                f"{result.database}: one debit on a warm connection, unloaded: "
                f"{result.single_debit_ms:.1f} ms"
            )
        print(f"{result.database}: {result.ledger_verify or 'ledger verify did not run'}")
        if result.use_rows is not None and result.debits_answered is not None:
            extra = result.use_rows - result.debits_answered
            print(
                f"{result.database}: {result.use_rows} USE rows in the ledger, "
                f"{result.debits_answered} debits answered OK "
                f"({extra} more recorded than answered: in flight when wrk stopped)"
            )


def bench(args: argparse.Namespace) -> int:
    root = REPO / "bench-results" / datetime.now().strftime("tx-%Y%m%d-%H%M%S")
    root.mkdir(parents=True)
    load_start = os.getloadavg()
    print(
        f"bench tx: working in {root.relative_to(REPO)}; load average {load_start[0]:.2f} on "
        f"{os.cpu_count()} CPUs{' (a busy machine skews the figures)' if load_start[0] >= 1 else ''}",
        file=sys.stderr,
    )
    results = [bench_database(kind, root, args) for kind in args.databases]
    summary = summarise(results)
    (root / "results.json").write_text(
        json.dumps(
            {
                "started": root.name,
                "cards": args.cards,
                "amount": AMOUNT,
                "hot_funding": HOT_FUNDING,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "runs_per_scenario": args.runs,
                "connections": args.connections,
                "threads": args.threads,
                "workers": args.workers,
                "cpus": os.cpu_count(),
                "load_average_start": load_start,
                "load_average": os.getloadavg(),
                "python": platform.python_version(),
                "databases": [{**asdict(r), "runs": [asdict(run_) for run_ in r.runs]} for r in results],
                "summary": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print_table(results, summary)
    print(f"results: {(root / 'results.json').relative_to(REPO)}")
    status = 0
    failed = [r for result in results for r in result.runs if r.failures]
    if failed:
        print(
            f"bench tx: {len(failed)} run(s) had non-2xx answers, socket errors, GraphQL errors or "
            "unexpected answers",
            file=sys.stderr,
        )
        status = 1
    unclean = [r.database for r in results if not r.ledger_clean]
    if unclean:
        print(f"bench tx: ledger verify is not clean on {', '.join(unclean)}", file=sys.stderr)
        status = 1
    short = [
        r.database
        for r in results
        if r.use_rows is not None
        and r.debits_answered is not None
        and not 0 <= r.use_rows - r.debits_answered <= args.connections * len(r.runs)
    ]
    if short:
        print(
            f"bench tx: USE rows and answered debits disagree beyond in-flight requests on "
            f"{', '.join(short)}",
            file=sys.stderr,
        )
        status = 1
    return status


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # unwind, so servers and databases go
    try:
        return bench(args)
    except BenchError as exc:
        print(f"bench tx: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench tx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
