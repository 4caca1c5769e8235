"""Transaction benchmark: USE debits of 0.01 through ``giftcardTransAdd``, on SQLite and PostgreSQL,
our server against a money-path reference server, side by side on the same data.

For each database in turn (a fresh SQLite file under ``bench-results/``; a fresh PostgreSQL
database ``giftcards_bench_<random>`` created on the server of ``--postgres-url`` and dropped at
the end): migrate, load demo cards (``giftcards demo-data``), mint a ``pos`` token for the debits
and an ``admin`` token, start ``giftcards serve`` with 2 workers on loopback, as in production
(JSON log lines into ``server.log``, metrics counted), and ``scripts/reference_tx_server.py`` with
as many workers on the same database: graphql-core with cached documents and one statement per
debit (on PostgreSQL a CTE that updates the balance only if it covers the amount and writes the
ledger row, on psycopg's async pool; on SQLite ``BEGIN IMMEDIATE``, ``UPDATE … RETURNING`` and the
``INSERT``). Fund one card with an ADD of 100000.00 (the hot card), check a few debits by hand (each
succeeds and takes exactly 0.01 off the balance it reports), check that the reference answers alike
(the same fields; debits of ours, the reference's and ours again on one card follow each other
cent by cent), time a few sequential debits on one warm connection on each, then run wrk with
``scripts/wrk_tx.lua``:

- ``hot``: every connection debits the hot card by its PHYSICAL code;
- ``hot-pin``: the same on the well-known card whose PHYSICAL code has a PIN (funded alike), each
  debit sending the PIN, so the cost of the PIN check shows beside ``hot``;
- ``spread``: the debits rotate over the PHYSICAL codes of all the loaded cards.

On PostgreSQL each of these is a plain debit in one statement (app.domain.plain_debits), as served
by default; with ``GIFTCARDS_ONE_STATEMENT_DEBITS=false`` in the environment, which the servers
inherit, every debit takes the full path instead (the figures before and after, side by side).

A warm-up of each scenario on each server, then ``--runs`` measured runs of each, interleaved
(hot on ours, hot on the reference, hot-pin on ours, …). With ``--profile`` (the default when
py-spy is installed) one more hot run on ours samples one of its workers with ``py-spy record``
(``profile-<database>.txt`` in the run's directory) and prints the own time by module and by
function. After a database's runs both servers are stopped and ``giftcards ledger verify`` must
come back clean; the number of USE rows in the ledger is compared with the debits wrk saw answered
by either server. Prints a table of median debits/s, p50, p99 and CPU ms per debit per database and
scenario for ours and for the reference, a line ``ratio ours/reference <database> <scenario>: <x>``
for each, a line ``CPU per debit by thread, ours <database> <scenario>: …`` splitting our CPU
between the workers' event loops (their main threads) and their other threads (from /proc), and
writes ``results.json`` into the run's directory. Exits non-zero when a run saw non-2xx answers,
socket errors, GraphQL errors or unexpected answers, or when the ledger does not verify. Run it
through ``scripts/bench tx``.
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
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import bench_profile
from bench_lookup import (
    _UNIT_MS,
    BIN,
    KEEPALIVE_PROBES,
    REPO,
    SCRIPTS,
    BenchError,
    Server,
    cpu_by_thread,
    cpu_seconds,
    describe_pinning,
    keepalive_ms,
    parse_seconds,
    parse_wrk,
    pinned_cpus,
    post,
    run,
    server_env,
    start,
    stop,
    wait_ready,
)
from bench_scale import DEFAULT_POSTGRES_URL, postgres_database
from sqlalchemy import create_engine, text

from app.demo import WELL_KNOWN

SERVERS = ("ours", "reference")

DEBIT = (
    "mutation Debit($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) "
    "{ id giftcardId status amount balance availableBalance balanceBefore balanceAfter } }"
)
AMOUNT = "-0.01"
HOT_FUNDING = "100000.00"
SAMPLE_DEBITS = 5  # hand-checked debits per scenario before measuring
DATABASES = ("sqlite", "postgresql")
SCENARIOS = ("hot", "hot-pin", "spread")
PIN_CARD = next(card for card in WELL_KNOWN if card.pin and card.physical)
_EXTRA = {
    "graphql_errors": re.compile(r"^GraphQL errors: (\d+)$", re.M),
    "unexpected_answers": re.compile(r"^Unexpected answers: (\d+)$", re.M),
}
_FIRST_PROBLEM = re.compile(r"^First problem: (.*)$", re.M)
_MAX_LATENCY = re.compile(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)\s", re.M)
_DEBITS_COUNTED = re.compile(
    r'^giftcards_graphql_root_fields_total\{code="OK",field="giftcardTransAdd"\} ([\d.e+]+)$', re.M
)
# Group commit: transactions committed together, summed, and the database transactions they took.
_BATCHED = re.compile(r"^giftcards_transaction_batch_size_(sum|count) ([\d.e+]+)$", re.M)
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


@dataclass
class TxRun:
    database: str
    scenario: str
    server: str
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
    # Of it: the workers' event loops (their main threads), and their other threads (ours: the
    # transactions' and reads' threads).
    loop_ms_per_debit: float | None = None
    threads_ms_per_debit: float | None = None
    warmup: bool = False
    profiled: bool = False  # the extra run with py-spy attached: not measured

    @property
    def measured(self) -> bool:
        return not (self.warmup or self.profiled)

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors + self.graphql_errors + self.unexpected_answers


@dataclass
class DatabaseResult:
    database: str
    cards: int
    hot_card_id: str = ""
    # median of sequential debits on one warm connection, per server
    single_debit_ms: dict[str, float] = field(default_factory=dict)
    runs: list[TxRun] = field(default_factory=list)
    ledger_verify: str = ""
    ledger_clean: bool = False
    use_rows: int | None = None
    debits_answered: int | None = None  # samples plus every 2xx answer wrk counted
    debits_counted: int | None = None  # giftcardTransAdd answered OK, by our /metrics
    batched: tuple[int, int] | None = None  # (transactions, database transactions), group commit
    pinned_cpus: list[int] = field(default_factory=list)  # ours, by its log (GIFTCARDS_PIN_WORKERS)
    profile: list[str] = field(default_factory=list)  # the summary printed


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
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (each server)")
    parser.add_argument(
        "--reference-pool-size",
        type=int,
        default=8,
        help="the reference's PostgreSQL connections per worker (default 8, as our pool keeps)",
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one more hot run on ours per database with py-spy sampling a worker "
        "(default: on when py-spy is installed)",
    )
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
    if args.profile is None:
        args.profile = bench_profile.py_spy() is not None
    if args.cards < 2:
        parser.error("--cards: at least 2")
    return args


# --- databases -------------------------------------------------------------------------------


@contextmanager
def database(kind: str, work: Path, args: argparse.Namespace, who: str = "bench tx") -> Iterator[str]:
    """A fresh SQLite file in ``work``, or a fresh PostgreSQL database on ``args.postgres_url``'s
    server (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{work / 'giftcards.db'}"
    else:
        with postgres_database(args.postgres_url, who) as url:
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


def took_amount(entry: dict[str, Any]) -> bool:
    """Whether a debit's answer says it completed, took exactly AMOUNT and left the balance it reports."""
    before, after = Decimal(entry["balanceBefore"]), Decimal(entry["balanceAfter"])
    return (
        entry["status"] == "COMPLETED"
        and Decimal(entry["amount"]) == Decimal(AMOUNT)
        and after == before + Decimal(AMOUNT)
        and Decimal(entry["balance"]) == after
    )


def check_debits(server: Server, token: str, codes: list[str], pin: str | None = None) -> None:
    """Each debit completes, takes exactly 0.01 and reports the balance after it."""
    for code in codes:
        entry = transact(server, token, code, AMOUNT, "USE", pin)
        if not took_amount(entry):
            raise BenchError(f"a sample debit did not take exactly {AMOUNT}: {json.dumps(entry)}")


def check_alike(servers: tuple[Server, Server], token: str, code: str, pin: str | None = None) -> None:
    """Ours, the reference, then ours again debit one card: the reference answers with the same
    fields, each debit takes exactly AMOUNT, and each starts from the balance the one before left
    (nothing else runs), with the same card and the same holds."""
    ours, reference = servers
    first = transact(ours, token, code, AMOUNT, "USE", pin)
    theirs = transact(reference, token, code, AMOUNT, "USE", pin)
    last = transact(ours, token, code, AMOUNT, "USE", pin)

    def on_hold(entry: dict[str, Any]) -> Decimal:
        return Decimal(entry["balance"]) - Decimal(entry["availableBalance"])

    problems = [
        f"fields {sorted(theirs)} against ours {sorted(first)}" if set(theirs) != set(first) else "",
        "" if all(map(took_amount, (first, theirs, last))) else f"a debit did not take exactly {AMOUNT}",
        "" if theirs["giftcardId"] == first["giftcardId"] else "another card",
        ""
        if Decimal(theirs["balanceBefore"]) == Decimal(first["balanceAfter"])
        and Decimal(last["balanceBefore"]) == Decimal(theirs["balanceAfter"])
        else "the balances do not follow on",
        "" if on_hold(theirs) == on_hold(first) else "other holds",
        "" if len({first["id"], theirs["id"], last["id"]}) == 3 else "a transaction id twice",
    ]
    if any(problems):
        raise BenchError(
            f"the reference does not answer as ours ({'; '.join(p for p in problems if p)}):\n"
            + "\n".join(json.dumps(entry) for entry in (first, theirs, last))
        )


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
    cpu_before, split_before = cpu_seconds(server.process.pid), cpu_by_thread(server.process.pid)
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
    cpu_after, split_after = cpu_seconds(server.process.pid), cpu_by_thread(server.process.pid)
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
        server=server.name,
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
    if split_before is not None and split_after is not None and result.requests:
        result.loop_ms_per_debit, result.threads_ms_per_debit = (
            (after - before) * 1000 / result.requests
            for before, after in zip(split_before, split_after, strict=True)
        )
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


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Load:
    """A loaded database: the servers' environment, the cards' codes (the hot one first), tokens,
    and a file of request bodies per scenario."""

    env: dict[str, str]
    codes: list[str]
    pos_token: str
    admin_token: str
    bodies: dict[str, Path]


def load_cards(kind: str, work: Path, url: str, args: argparse.Namespace) -> Load:
    # As in production: JSON log lines (into server.log), one per request; metrics are always counted.
    env = {**server_env(url, work), "GIFTCARDS_LOG_FORMAT": "json", "GIFTCARDS_LOG_LEVEL": "info"}
    codes_file = work / "codes.tsv"
    print(f"bench tx [{kind}]: loading {args.cards} cards", file=sys.stderr)
    giftcards = str(BIN / "giftcards")
    run([giftcards, "db", "upgrade"], env, timeout=120)
    run(
        [giftcards, "demo-data", "--cards", str(args.cards), "--codes-file", str(codes_file)],
        env,
        timeout=1800,
    )
    codes = physical_codes(codes_file)
    if len(codes) != args.cards:
        raise BenchError(f"{codes_file}: expected {args.cards} PHYSICAL codes, found {len(codes)}")
    tokens = [
        run(
            [giftcards, "token", "--sub", f"bench-{role}", "--role", role, "--ttl", "2h"],
            env,
            timeout=60,
            capture=True,
        ).strip()
        for role in ("pos", "admin")
    ]
    random.Random(args.cards).shuffle(codes)
    bodies = {scenario: work / f"{scenario}-bodies.jsonl" for scenario in SCENARIOS}
    bodies["hot"].write_text(json.dumps(debit_body(codes[0])) + "\n")
    assert PIN_CARD.physical is not None
    bodies["hot-pin"].write_text(json.dumps(debit_body(PIN_CARD.physical, pin=PIN_CARD.pin)) + "\n")
    bodies["spread"].write_text("".join(json.dumps(debit_body(code)) + "\n" for code in codes))
    return Load(env, codes, tokens[0], tokens[1], bodies)


@contextmanager
def servers_running(
    env: dict[str, str], work: Path, args: argparse.Namespace
) -> Iterator[tuple[Server, Server]]:
    """Ours (log: server.log) and the reference (reference.log), each with ``args.workers`` workers."""
    started: list[Server] = []
    try:
        ours = [str(BIN / "giftcards"), "serve", "--workers", str(args.workers)]
        reference = [
            str(BIN / "python"),
            str(SCRIPTS / "reference_tx_server.py"),
            "--workers",
            str(args.workers),
        ]
        reference += ["--pool-size", str(args.reference_pool_size)]
        started.append(start("ours", ours, env, work / "server.log"))
        started.append(start("reference", reference, env, work / "reference.log"))
        yield started[0], started[1]
    finally:
        for server in started:
            stop(server)


def check_servers(servers: tuple[Server, Server], kind: str, load: Load, result: DatabaseResult) -> int:
    """Fund the hot cards, check debits on ours and the reference's answers against ours, time one
    debit on each; returns how many debits were answered."""
    ours, reference = servers
    token, codes, pin_code = load.pos_token, load.codes, PIN_CARD.physical
    assert pin_code is not None
    wait_ready(ours, token, "/healthz")
    wait_ready(reference, token, None)
    print(
        f"bench tx [{kind}]: ours on :{ours.port} (pid {ours.process.pid}), "
        f"reference on :{reference.port} (pid {reference.process.pid})",
        file=sys.stderr,
    )
    result.hot_card_id = fund_hot_card(ours, load.admin_token, codes[0])
    fund_hot_card(ours, load.admin_token, pin_code, PIN_CARD.pin)
    check_debits(ours, token, [codes[0]] * SAMPLE_DEBITS)
    check_debits(ours, token, [pin_code] * SAMPLE_DEBITS, PIN_CARD.pin)
    check_debits(ours, token, codes[1 : SAMPLE_DEBITS + 1])
    for code, pin in ((codes[0], None), (pin_code, PIN_CARD.pin), (codes[SAMPLE_DEBITS + 1], None)):
        check_alike(servers, token, code, pin)
    answered = 3 * SAMPLE_DEBITS + 3 * 3
    print(
        f"bench tx [{kind}]: hot card {result.hot_card_id} and the PIN card funded with {HOT_FUNDING}; "
        f"{3 * SAMPLE_DEBITS} sample debits each took {AMOUNT}; the reference answers as ours "
        "(hot, PIN, another card)",
        file=sys.stderr,
    )
    for server in servers:
        ms = result.single_debit_ms[server.name] = keepalive_ms(server, debit_body(codes[-1]), token)
        answered += KEEPALIVE_PROBES + 1
        print(
            f"bench tx [{kind}]: {server.name}: one debit on a warm connection, unloaded, takes {ms:.1f} ms",
            file=sys.stderr,
        )
    return answered


def run_load(servers: tuple[Server, Server], kind: str, args: argparse.Namespace, load: Load) -> list[TxRun]:
    """A warm-up of each scenario on each server, then the measured runs, interleaved."""
    runs = []
    for scenario in SCENARIOS:
        for server in servers:
            job = (load.bodies[scenario], load.pos_token)
            warm = wrk(server, (kind, scenario), args.warmup, args, job, warmup=True)
            runs.append(warm)
            print(
                f"bench tx [{kind}]: warm-up {scenario} on {server.name}: {describe(warm)}", file=sys.stderr
            )
    for index in range(args.runs):
        for scenario in SCENARIOS:
            for server in servers:
                job = (load.bodies[scenario], load.pos_token)
                measured = wrk(server, (kind, scenario), args.duration, args, job)
                runs.append(measured)
                print(
                    f"bench tx [{kind}]: run {index + 1}/{args.runs} {scenario} on {server.name}: "
                    f"{describe(measured)}",
                    file=sys.stderr,
                )
    return runs


def profile_run(
    ours: Server, kind: str, args: argparse.Namespace, load: Load, out: Path
) -> tuple[TxRun | None, list[str]]:
    """One more hot run on ours with py-spy sampling one worker into ``out``: the run, and the
    summary's lines (or one line saying why there is none)."""
    pid = bench_profile.worker(ours.process.pid)
    if pid is None:
        return None, [f"profile {kind}: no worker process found under pid {ours.process.pid}"]
    try:
        spy = bench_profile.record(pid, args.duration, out)
    except OSError as exc:
        return None, [f"profile {kind}: cannot start py-spy ({exc})"]
    job = (load.bodies["hot"], load.pos_token)
    profiled = wrk(ours, (kind, "hot"), args.duration, args, job)
    profiled.profiled = True
    try:
        said, _ = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        said, _ = spy.communicate()
    if spy.returncode != 0 or not out.exists():
        last = (said or "").strip().splitlines()[-1:] or ["no output"]
        return profiled, [f"profile {kind}: py-spy could not sample worker {pid}: {last[0]}"]
    summary = bench_profile.summarise(out.read_text(), REPO)
    where = out.relative_to(REPO) if out.is_relative_to(REPO) else out
    head = (
        f"profile of ours, {kind} hot, worker {pid}, {args.duration}s ({describe(profiled)}; raw: {where}):"
    )
    return profiled, [head, *summary.lines(args.duration)]


def read_metrics(server: Server, result: DatabaseResult) -> None:
    """giftcardTransAdd answered OK, and the group commit's transactions per database transaction,
    by the server's /metrics (left None: not there)."""
    try:
        with _LOOPBACK.open(server.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return
    found = _DEBITS_COUNTED.search(text)
    result.debits_counted = int(float(found.group(1))) if found else None
    batched = {name: int(float(value)) for name, value in _BATCHED.findall(text)}
    if batched.get("count"):
        result.batched = batched["sum"], batched["count"]


def verify_ledger(env: dict[str, str], url: str, result: DatabaseResult) -> None:
    verify = subprocess.run(
        [str(BIN / "giftcards"), "ledger", "verify"],
        env={**env, "GIFTCARDS_LOG_LEVEL": "warning"},  # its verdict, without the migration checks' lines
        timeout=600,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    result.ledger_verify = verify.stdout.strip()
    result.ledger_clean = verify.returncode == 0
    print(f"bench tx [{result.database}]: {result.ledger_verify} (exit {verify.returncode})", file=sys.stderr)
    result.use_rows = use_rows(url)


def bench_database(kind: str, root: Path, args: argparse.Namespace) -> DatabaseResult:
    work = root / kind
    work.mkdir()
    result = DatabaseResult(database=kind, cards=args.cards)
    with database(kind, work, args) as url:
        load = load_cards(kind, work, url, args)
        with servers_running(load.env, work, args) as servers:
            answered = check_servers(servers, kind, load, result)
            result.runs += run_load(servers, kind, args, load)
            if args.profile:
                profiled, result.profile = profile_run(
                    servers[0], kind, args, load, root / f"profile-{kind}.txt"
                )
                result.runs += [profiled] if profiled else []
            read_metrics(servers[0], result)
            result.pinned_cpus = pinned_cpus(servers[0])  # by now every worker has started
        # Only answers without a problem are debits wrk saw succeed (on either server).
        result.debits_answered = answered + sum(r.requests - r.failures for r in result.runs)
        verify_ledger(load.env, url, result)
    return result


# --- report ----------------------------------------------------------------------------------

Summary = dict[str, dict[str, dict[str, float]]]


def summarise(results: list[DatabaseResult], server: str = "ours") -> Summary:
    summary: Summary = {}
    for result in results:
        for scenario in SCENARIOS:
            mine = [r for r in result.runs if r.scenario == scenario and r.server == server and r.measured]
            summary.setdefault(result.database, {})[scenario] = {
                "debits_per_second": statistics.median(r.debits_per_second for r in mine),
                "p50_ms": statistics.median(r.p50_ms for r in mine),
                "p99_ms": statistics.median(r.p99_ms for r in mine),
                "max_ms": max(r.max_ms for r in mine),
                "cpu_ms_per_debit": statistics.median(r.cpu_ms_per_debit or 0.0 for r in mine),
                "loop_ms_per_debit": statistics.median(r.loop_ms_per_debit or 0.0 for r in mine),
                "threads_ms_per_debit": statistics.median(r.threads_ms_per_debit or 0.0 for r in mine),
                "failures": sum(r.failures for r in mine),
            }
    return summary


def ratios(summary: Summary, reference: Summary) -> dict[str, dict[str, float]]:
    """Our median debits/s over the reference's, per database and scenario."""
    return {
        database: {
            scenario: row["debits_per_second"] / max(reference[database][scenario]["debits_per_second"], 1e-9)
            for scenario, row in rows.items()
        }
        for database, rows in summary.items()
    }


def print_rows(results: list[DatabaseResult], summary: Summary, server: str) -> None:
    print(
        f"{'database':<11} {'scenario':<8} {'debits/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'CPU ms/debit':>13} {'errors':>7}   runs (debits/s)"
    )
    for result in results:
        for scenario, row in summary[result.database].items():
            each = ", ".join(
                f"{r.debits_per_second:.0f}"
                for r in result.runs
                if r.scenario == scenario and r.server == server and r.measured
            )
            print(
                f"{result.database:<11} {scenario:<8} {row['debits_per_second']:>9.0f} "
                f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['max_ms']:>8.0f} "
                f"{row['cpu_ms_per_debit']:>13.3f} "
                f"{int(row['failures']):>7}   {each}"
            )


def print_table(results: list[DatabaseResult], summary: Summary, reference: Summary) -> None:
    print()
    print_rows(results, summary, "ours")
    print(
        "\nthe reference server (scripts/reference_tx_server.py: graphql-core, one statement per debit), "
        "same data, runs interleaved with ours:"
    )
    print_rows(results, reference, "reference")
    print()
    for database, each in ratios(summary, reference).items():
        for scenario, ratio in each.items():
            print(f"ratio ours/reference {database} {scenario}: {ratio:.2f}")
    for result in results:
        rows = summary[result.database]
        print(
            f"ratio hot-pin/hot {result.database}: "
            f"{rows['hot-pin']['debits_per_second'] / max(rows['hot']['debits_per_second'], 1e-9):.2f} "
            "(debits/s with a PIN checked against the same card load without one)"
        )
    for database, rows in summary.items():
        for scenario, row in rows.items():
            print(
                f"CPU per debit by thread, ours {database} {scenario}: event loops "
                f"{row['loop_ms_per_debit']:.2f} ms, other threads {row['threads_ms_per_debit']:.2f} ms"
            )
    for result in results:
        print_database(result)


def print_database(result: DatabaseResult) -> None:
    name, single = result.database, result.single_debit_ms
    if "ours" in single and "reference" in single:
        print(
            f"{name}: one debit on a warm connection, unloaded: {single['ours']:.1f} ms "
            f"(reference {single['reference']:.1f} ms)"
        )
    print(f"{name}: {result.ledger_verify or 'ledger verify did not run'}")
    if result.use_rows is not None and result.debits_answered is not None:
        extra = result.use_rows - result.debits_answered
        print(
            f"{name}: {result.use_rows} USE rows in the ledger, "
            f"{result.debits_answered} debits answered OK by ours and the reference "
            f"({extra} more recorded than answered: in flight when wrk stopped)"
        )
    if result.debits_counted is not None:
        print(f"{name}: our /metrics counted {result.debits_counted} giftcardTransAdd answered OK")
    if result.batched is not None:
        done, commits = result.batched
        print(
            f"{name}: group commit: {done} transactions in {commits} database transactions "
            f"({done / commits:.2f} per commit)"
        )
    print(f"{name}: ours: {describe_pinning(result.pinned_cpus)}")
    for line in result.profile:
        print(f"{name}: {line}")


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
    summary, reference = summarise(results), summarise(results, "reference")
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
                "reference_summary": reference,
                "ratios": ratios(summary, reference),
            },
            indent=2,
        )
        + "\n"
    )
    print_table(results, summary, reference)
    print(f"results: {(root / 'results.json').relative_to(REPO)}")
    return exit_status(results, args)


def exit_status(results: list[DatabaseResult], args: argparse.Namespace) -> int:
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
