"""Where a debit's CPU goes, step by step: ``ledger.create`` in this process, one debit at a time.

Over HTTP a debit's CPU splits between a worker's event loop and the threads that run its
transactions (``bench tx`` prints that split). This looks inside the second half, which a sampling
profiler misreads here (py-spy counts a thread waiting for the GIL, or for the database in C, as
busy). For each database in turn (a fresh SQLite file under ``bench-results/``, a fresh PostgreSQL
database on the server of ``--postgres-url``, dropped at the end): migrate, load ``--cards`` demo
cards, build the services as a worker does, then debit 0.01 by each card's PHYSICAL code in turn,
through :meth:`app.domain.ledger.Ledger.create` as a POS token's principal, this process pinned to
one CPU as ``giftcards serve`` pins a worker (app.cpu_pinning). On PostgreSQL twice: as served, each
debit a plain one in one statement (app.domain.plain_debits), then with
``GIFTCARDS_ONE_STATEMENT_DEBITS=false``, each on the full path. Each step below is wrapped to add up
the CPU time (``time.thread_time``) it takes; the rest of a debit is what is left of its own CPU
time. A plain debit's step:

- ``plain call``: the one statement (``PlainDebitStore.debit``), the driver's work and the wait;

the full path's:

- ``code read``: the live code behind the address (``LedgerStore.live_codes``, a pooled
  connection outside the transaction);
- ``lock``: the card and the code locked and read in the transaction (``lock_card_and_code``);
- ``move``: the balance change with its ledger and audit rows (``moves.move``; on PostgreSQL with
  the COMMIT in the same round trip);
- ``commit``: the unit of work's commit (``UnitOfWork.commit``);
- ``rest``: the domain's rules, the group commit's lane, the attempt budget, the unit of work's
  session opened and closed, the answer built.

Prints the median of ``--rounds`` rounds of ``--debits`` debits per step and database, and their
share; fails when a debit does not take the path's steps once each (a plain call that left the
debit to the full path, a step renamed or moved); checks that every debit wrote one USE row of
exactly 0.01 (by SQL) and that ``ledger verify`` (each card's balance against its ledger) is clean
after. Run it through ``scripts/bench steps``.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from bench_lookup import REPO, BenchError, run, server_env
from bench_scale import BIN
from bench_tx import database, physical_codes
from sqlalchemy import Engine, create_engine, text

STEPS = ("code read", "lock", "move", "commit")  # the full path's
PLAIN_STEPS = ("plain call",)  # a plain debit's
EVERY_STEP = (*PLAIN_STEPS, *STEPS)
DATABASES = ("sqlite", "postgresql")
WARMUP = 100  # debits before the measured rounds: statements prepared, pools and caches filled
Rounds = dict[str, list[float]]  # per step (and rest, total): its CPU per debit in each round, ms


class DebitPath(NamedTuple):
    """The path debits take as measured: a name, its steps, and the settings that choose it."""

    label: str
    steps: tuple[str, ...]
    env: dict[str, str]


FULL = DebitPath("", STEPS, {"GIFTCARDS_ONE_STATEMENT_DEBITS": "false"})
PATHS = {
    "sqlite": (FULL,),
    "postgresql": (DebitPath(", plain", PLAIN_STEPS, {}), FULL._replace(label=", full path")),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench steps",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--cards", type=int, default=2000, help="demo cards to load (default 2000)")
    parser.add_argument("--debits", type=int, default=1000, help="debits a round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; their median is shown (default 3)")
    parser.add_argument("--databases", default=",".join(DATABASES), help="sqlite,postgresql (default both)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "GIFTCARDS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="the PostgreSQL server to create the scratch database on (loopback only)",
    )
    args = parser.parse_args(argv)
    databases = args.databases.split(",")
    if any(name not in DATABASES for name in databases) or min(args.cards, args.debits, args.rounds) < 1:
        parser.error("--databases names sqlite and/or postgresql; --cards, --debits and --rounds at least 1")
    args.databases = databases
    return args


class StepClock:
    """The CPU time each wrapped step took, and how often it ran, on any thread."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(EVERY_STEP, 0.0)
        self.calls: dict[str, int] = dict.fromkeys(EVERY_STEP, 0)

    def timed(self, step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[step] += time.thread_time() - started
                self.calls[step] += 1

        return wrapper

    def reset(self) -> None:
        self.seconds = dict.fromkeys(EVERY_STEP, 0.0)
        self.calls = dict.fromkeys(EVERY_STEP, 0)


@contextmanager
def steps_timed(clock: StepClock) -> Iterator[None]:
    """The steps wrapped where the ledger calls them, and put back after."""
    from app import db
    from app.store import ledger, money, moves, plain_debits

    places: list[tuple[Any, str, str]] = [
        (plain_debits.PlainDebitStore, "debit", "plain call"),
        (ledger.LedgerStore, "live_codes", "code read"),
        (money, "lock_card_and_code", "lock"),
        (moves, "move", "move"),
        (db.UnitOfWork, "commit", "commit"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in places]
    try:
        for owner, name, step in places:
            setattr(owner, name, clock.timed(step, getattr(owner, name)))
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@contextmanager
def on_one_cpu() -> Iterator[None]:
    """This thread on one CPU, as a worker is pinned (its threads hand over on one core); put back
    after."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def measure(url: str, work: Path, codes: list[str], args: argparse.Namespace, path: DebitPath) -> Rounds:
    """Per round: each of the path's steps' CPU per debit (ms), ``rest`` and ``total``."""
    from app.config import load_settings
    from app.domain.trans_requests import TransRequest
    from app.enums import CodeType, TransType
    from app.policy import Principal
    from app.services import build_services

    services = build_services(load_settings({**server_env(url, work), **path.env}))
    principal = Principal("bench-steps", frozenset({"UsePhysicalGiftCardCodes", "GiftCardTransUse"}))
    requests = [
        TransRequest(TransType.USE, "-0.01", code_type=CodeType.PHYSICAL, code=code) for code in codes
    ]

    def debit(index: int) -> None:
        services.ledger.create(principal, requests[index % len(requests)])

    try:
        with on_one_cpu():
            return timed_rounds(debit, args, path.steps)
    finally:
        services.engine.dispose()


def timed_rounds(debit: Callable[[int], None], args: argparse.Namespace, steps: tuple[str, ...]) -> Rounds:
    """A warm-up, then ``args.rounds`` rounds of ``args.debits`` debits, each of ``steps`` timed."""
    clock = StepClock()
    rounds: Rounds = {name: [] for name in (*steps, "rest", "total")}
    with steps_timed(clock):
        for index in range(WARMUP):
            debit(index)
        for number in range(args.rounds):
            clock.reset()
            started = time.thread_time()
            for index in range(args.debits):
                debit(WARMUP + number * args.debits + index)
            total = (time.thread_time() - started) * 1000 / args.debits
            for step in EVERY_STEP:
                if clock.calls[step] != (expected := args.debits if step in steps else 0):
                    raise BenchError(
                        f"{step}: ran {clock.calls[step]} times for {args.debits} debits, not {expected}"
                    )
            for step in steps:
                rounds[step].append(clock.seconds[step] * 1000 / args.debits)
            rounds["rest"].append(total - sum(rounds[step][-1] for step in steps))
            rounds["total"].append(total)
    return rounds


def use_rows(engine: Engine) -> tuple[int, int]:
    """How many USE rows the ledger holds, and their amounts' sum (minor units)."""
    with engine.connect() as connection:
        count, total = connection.execute(
            text(
                "SELECT count(*), coalesce(sum(amount), 0) FROM giftcard_transactions "
                "WHERE trans_type = 'USE'"
            )
        ).one()
    return int(count), int(total)


def check_ledger(engine: Engine, before: tuple[int, int], debits: int) -> None:
    """Every debit took exactly 0.01 by a USE row of its own, and the ledger verifies."""
    from app.store.ledger import verify

    count, total = use_rows(engine)
    if (count - before[0], total - before[1]) != (debits, -debits):
        raise BenchError(
            f"{debits} debits of one minor unit: found {count - before[0]} USE rows of {total - before[1]}"
        )
    checked, differences = verify(engine, datetime.now(UTC))
    if differences:
        raise BenchError(f"ledger verify: {len(differences)} of {checked} cards differ")


def bench_database(kind: str, root: Path, args: argparse.Namespace) -> list[tuple[str, Rounds]]:
    """Each of the database's paths measured: (its name in the report, its rounds)."""
    work = root / kind
    work.mkdir(parents=True)
    with database(kind, work, args, "bench steps") as url:
        env = server_env(url, work)
        codes_file = work / "codes.tsv"
        print(f"bench steps [{kind}]: loading {args.cards} cards", file=sys.stderr)
        run([str(BIN / "giftcards"), "db", "upgrade"], env, timeout=120)
        command = [
            str(BIN / "giftcards"),
            "demo-data",
            "--cards",
            str(args.cards),
            "--codes-file",
            str(codes_file),
        ]
        run(command, env, timeout=1800)
        engine = create_engine(url)  # the checks' own, apart from the measured services'
        try:
            before = use_rows(engine)
            codes = physical_codes(codes_file)
            measured = [(kind + path.label, measure(url, work, codes, args, path)) for path in PATHS[kind]]
            check_ledger(engine, before, (WARMUP + args.rounds * args.debits) * len(measured))
        finally:
            engine.dispose()
    return measured


def report(label: str, rounds: Rounds) -> str:
    medians = {name: statistics.median(values) for name, values in rounds.items()}
    total = medians["total"]
    parts = ", ".join(
        f"{name} {medians[name]:.3f} ms ({medians[name] / total:.0%})" for name in rounds if name != "total"
    )
    return f"CPU per debit by step, {label}: {parts}; total {total:.3f} ms"


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    """The bench; its databases' files under ``root`` (a new directory in ``bench-results/``)."""
    args = parse_args(argv)
    root = root or REPO / "bench-results" / datetime.now().strftime("steps-%Y%m%d-%H%M%S")
    try:
        lines = [report(*path) for kind in args.databases for path in bench_database(kind, root, args)]
    except BenchError as exc:
        print(f"bench steps: {exc}", file=sys.stderr)
        return 1
    print(f"ledger.create, one debit at a time, {args.rounds} rounds of {args.debits} (medians):")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
