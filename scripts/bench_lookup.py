"""Lookup benchmark: masked ``giftcard(code:)`` lookups, our server against the reference server.

Loads demo cards into a fresh SQLite file under ``bench-results/`` (with ``--database
postgresql``: into a fresh PostgreSQL database on loopback, by ``scripts/bulk_load.py``'s COPY,
dropped at the end), mints a storefront token,
starts ``giftcards serve`` and ``scripts/reference_server.py`` (2 workers each) on loopback,
checks that both give the same answers, then runs wrk against each in turn (ours, reference,
ours, …) and prints median req/s, p50, p99 and server CPU time per request, and the ratio
ours/reference. A single-connection probe first tells whether responses wait for delayed ACKs.
The results also go to ``results.json`` in the run's directory. Exits non-zero when a run saw
non-2xx responses or socket errors. Run it through ``scripts/bench lookup [OPTIONS]``.

On PostgreSQL it also prints the tables' and indexes' sizes per million cards, times history
pages (``giftcardTransactions``, 30 a page) of a card with 100,000 ledger rows against one with 10,
and runs ``giftcards ledger verify`` over the whole ledger, with its rate and peak memory.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_scale import (
    DEFAULT_POSTGRES_URL,
    BenchError,
    PageTiming,
    bulk_load,
    history_pages,
    ledger_verify,
    postgres_database,
    print_history,
    print_sizes,
    sizes,
)

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
BIN = REPO / ".venv" / "bin"
QUERY = (
    "query Lookup($code: String!) { giftcard(code: $code) { limitedByPermission "
    "results { id memberId balance codes { id codeType code expiresOn isMasked } } } }"
)
LOOKUP_TYPES = ("PHYSICAL", "PERSONAL")  # what the storefront role may find by
STOREFRONT_PERMISSIONS = ("FindGiftCardByCode", "UsePhysicalGiftCardCodes", "UseCryptoGiftCardCodes")
LOAD_CODES = 20_000  # codes the load rotates over
GATE_SAMPLES = 20
TARGET_RATIO = 0.8  # the lookup target of the speed work: within 0.8 of the reference
START_TIMEOUT = 60.0
# Storefront attempts are throttled: the limiter counts every one, with a limit no run reaches
# (a short window keeps the moving-window log as short as a real limit would).
UNREACHED_LIMIT = "1000000/second"
KEEPALIVE_PROBES = 5
NAGLE_MS = 30.0  # a delayed ACK costs ~40 ms on Linux; an unloaded lookup takes a few ms
_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Run:
    server: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    cpu_ms_per_request: float | None = None  # server processes' CPU time over requests served


def parse_seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)(s|m)?", text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 10s or 1m")
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench lookup", description=__doc__)
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
        help="unmeasured load on each server first (default 3s)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        choices=range(1, 10),
        metavar="N",
        help="measured runs per server (default 3)",
    )
    parser.add_argument("--cards", type=int, default=100_000, help="random cards to load")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="sqlite (default): a fresh file; postgresql: a fresh database on --postgres-url's server",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("GIFTCARDS_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help=f"a PostgreSQL server on loopback (default {DEFAULT_POSTGRES_URL}, or "
        "$GIFTCARDS_BENCH_POSTGRES_URL); the benchmark creates and drops its own database there",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(command: list[str], env: dict[str, str], timeout: float, *, capture: bool = False) -> str:
    shown = " ".join(command[:3])
    try:
        done = subprocess.run(
            command,
            env=env,
            timeout=timeout,
            check=True,
            text=True,
            stdout=subprocess.PIPE if capture else None,
        )
    except subprocess.CalledProcessError as exc:
        raise BenchError(f"`{shown} …` failed with exit code {exc.returncode}") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{shown} …` took longer than {timeout:.0f}s") from None
    return done.stdout or ""


def server_env(database_url: str, work: Path, attempt_limits: str = UNREACHED_LIMIT) -> dict[str, str]:
    """The environment of a benchmarked server: its database, state and policy, the attempt limits."""
    return {
        **os.environ,
        "GIFTCARDS_DATABASE_URL": database_url,
        "GIFTCARDS_STATE_DIR": str(work / "state"),
        "GIFTCARDS_PERMISSIONS_FILE": str(REPO / "permissions.yaml"),
        "GIFTCARDS_CODE_ATTEMPT_LIMITS": attempt_limits,
    }


def prepare(work: Path, cards: int, database_url: str) -> tuple[dict[str, str], Path, dict[int, int]]:
    """Migrated database and demo cards; the server environment, the codes file and, on
    PostgreSQL, the history cards ({ledger rows: card id})."""
    env = server_env(database_url, work)
    codes_file = work / "codes.tsv"
    run([str(BIN / "giftcards"), "db", "upgrade"], env, timeout=120)
    if database_url.startswith("postgresql"):
        return env, codes_file, bulk_load(env, cards, codes_file)
    run(
        [str(BIN / "giftcards"), "demo-data", "--cards", str(cards), "--codes-file", str(codes_file)],
        env,
        timeout=1800,
    )
    return env, codes_file, {}


def pick_codes(codes_file: Path, seed: int) -> list[tuple[str, str]]:
    """(type, code) pairs the storefront may find by, shuffled, at most LOAD_CODES of them."""
    pairs = []
    with codes_file.open() as lines:
        for line in lines:
            code_type, _, code = line.rstrip("\n").partition("\t")
            if code_type in LOOKUP_TYPES and code:
                pairs.append((code_type, code))
    random.Random(seed).shuffle(pairs)
    if len(pairs) < GATE_SAMPLES:
        raise BenchError(f"{codes_file} holds too few PHYSICAL/PERSONAL codes")
    return pairs[:LOAD_CODES]


def start(name: str, command: list[str], env: dict[str, str], log: Path) -> Server:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, port, process, log)


_PINNED = re.compile(r"worker \d+ pinned to CPU (\d+)")


def pinned_cpus(server: Server) -> list[int]:
    """The CPUs `giftcards serve` pinned the server's workers to, by its log (GIFTCARDS_PIN_WORKERS)."""
    return sorted(int(cpu) for cpu in _PINNED.findall(server.log.read_text(errors="replace")))


def describe_pinning(cpus: list[int]) -> str:
    return f"workers pinned to CPUs {', '.join(map(str, cpus))}" if cpus else "workers not pinned to CPUs"


def stop(server: Server) -> None:
    """SIGTERM the server's own process group (supervisor and workers), then SIGKILL."""
    if server.process.poll() is not None:
        return
    pgid = server.process.pid  # start_new_session made it the group leader
    os.killpg(pgid, signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        server.process.wait(timeout=5)


def post(
    server: Server, body: dict[str, Any], token: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    request = urllib.request.Request(
        server.url + "/graphql",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {token}", **(headers or {})},
    )
    with _LOOPBACK.open(request, timeout=10) as response:
        return dict(json.load(response))


def wait_ready(server: Server, token: str, health_path: str | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} server exited with code {server.process.returncode}; see its log"
            )
        try:
            if health_path:
                with _LOOPBACK.open(server.url + health_path, timeout=2) as response:
                    if response.status == 200:
                        return
            elif post(server, {"query": "{ __typename }"}, token).get("data"):
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise BenchError(f"{server.name} server did not answer within {START_TIMEOUT:.0f}s")


def check_answers(servers: list[Server], samples: list[tuple[str, str]], token: str) -> None:
    """Both servers find each sample card, mask alike and agree on every field."""
    for code_type, code in samples:
        answers = []
        for server in servers:
            reply = post(server, {"query": QUERY, "variables": {"code": code}}, token)
            found = (reply.get("data") or {}).get("giftcard") or {}
            results = found.get("results") or []
            if reply.get("errors") or len(results) != 1 or not results[0].get("balance"):
                raise BenchError(
                    f"{server.name} server: a {code_type} lookup did not find exactly "
                    f"one card: {json.dumps(reply)[:300]}"
                )
            shown = {entry["codeType"]: entry for entry in results[0]["codes"]}
            expected = code if code_type == "PHYSICAL" else "*" * (len(code) - 4) + code[-4:]
            if shown.get(code_type, {}).get("code") != expected:
                raise BenchError(
                    f"{server.name} server: the {code_type} code is not shown as "
                    "expected (PHYSICAL in full, PERSONAL masked to its last four)"
                )
            answers.append(found)
        if any(answer != answers[0] for answer in answers[1:]):
            raise BenchError(
                f"the servers disagree on a {code_type} lookup:\n"
                + "\n".join(json.dumps(answer) for answer in answers)
            )


def keepalive_ms(server: Server, body: dict[str, Any], token: str) -> float:
    """Median time of one request on a warm keep-alive connection, unloaded.

    Around 40 ms means the server's responses wait for the client's delayed ACK: Nagle is on
    (TCP_NODELAY unset), as with uvicorn's own listener for ``--workers N``.
    """
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    times = []
    try:
        for _ in range(KEEPALIVE_PROBES + 1):
            started = time.perf_counter()
            connection.request("POST", "/graphql", json.dumps(body), headers)
            connection.getresponse().read()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    return statistics.median(times[1:])


def _group_stats(group: int) -> Iterator[tuple[Path, list[str]]]:
    """Each live process of a process group: its /proc directory and the fields of its stat after
    the name (pgrp, utime and stime are fields 5, 14 and 15: here 2, 11 and 12)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process has gone
            continue
        if int(fields[2]) == group:
            yield stat.parent, fields


def cpu_seconds(group: int) -> float | None:
    """CPU time (user + system) of every live process in a process group; None without /proc."""
    if not Path("/proc").is_dir():
        return None
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _group_stats(group))
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_by_thread(group: int) -> tuple[float, float] | None:
    """CPU time (user + system) of a process group's event loops, each process's main thread, and
    of all its other live threads; None without /proc."""
    if not Path("/proc").is_dir():
        return None
    ticks = [0, 0]  # main threads, other threads
    for process, _ in _group_stats(group):
        for task in process.glob("task/*/stat"):
            try:
                fields = task.read_text().rpartition(")")[2].split()
            except OSError:  # the thread has gone
                continue
            ticks[task.parent.name != process.name] += int(fields[11]) + int(fields[12])
    return ticks[0] / os.sysconf("SC_CLK_TCK"), ticks[1] / os.sysconf("SC_CLK_TCK")


def wrk(server: Server, seconds: int, args: argparse.Namespace, bodies: Path, token: str) -> Run:
    cpu_before = cpu_seconds(server.process.pid)
    command = [
        "wrk",
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        "--latency",
        f"--script={SCRIPTS / 'wrk_lookup.lua'}",
        server.url + "/graphql",
        "--",
        str(bodies),
        token,
    ]
    output = run(command, dict(os.environ), timeout=seconds + 60, capture=True)
    cpu_after = cpu_seconds(server.process.pid)
    result = parse_wrk(server.name, output)
    if cpu_before is not None and cpu_after is not None and result.requests:
        result.cpu_ms_per_request = (cpu_after - cpu_before) * 1000 / result.requests
    return result


def parse_wrk(name: str, output: str) -> Run:
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    latency = {pct: float(value) * _UNIT_MS[unit] for pct, value, unit in _LATENCY.findall(output)}
    if not rate or not total or set(latency) != {"50", "99"}:
        raise BenchError(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Run(
        server=name,
        requests_per_second=float(rate.group(1)),
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def summarise(runs: list[Run], names: list[str]) -> dict[str, dict[str, float]]:
    summary = {}
    for name in names:
        mine = [r for r in runs if r.server == name]
        summary[name] = {
            "requests_per_second": statistics.median(r.requests_per_second for r in mine),
            "p50_ms": statistics.median(r.p50_ms for r in mine),
            "p99_ms": statistics.median(r.p99_ms for r in mine),
            "cpu_ms_per_request": statistics.median(r.cpu_ms_per_request or 0.0 for r in mine),
        }
    return summary


def print_table(
    runs: list[Run], summary: dict[str, dict[str, float]], ratio: float, cpu_ratio: float | None
) -> None:
    print(f"\n{'server':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}   runs (req/s)")
    for name, row in summary.items():
        each = ", ".join(f"{r.requests_per_second:.0f}" for r in runs if r.server == name)
        print(
            f"{name:<10} {row['requests_per_second']:>8.0f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['cpu_ms_per_request']:>11.3f}   {each}"
        )
    verdict = "meets" if ratio >= TARGET_RATIO else "is below"
    print(f"ratio ours/reference (median req/s): {ratio:.3f} — {verdict} the target {TARGET_RATIO}")
    if cpu_ratio is not None:
        print(f"CPU per request, reference/ours: {cpu_ratio:.3f} (less sensitive to a busy machine)")


@contextmanager
def servers_running(env: dict[str, str], work: Path, workers: int) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        # Lookups only, so as many workers as the reference's, though the file is SQLite.
        ours = [str(BIN / "giftcards"), "serve", "--workers", str(workers), "--sqlite-multiprocess"]
        reference = [str(BIN / "python"), str(SCRIPTS / "reference_server.py"), "--workers", str(workers)]
        started.append(start("ours", ours, env, work / "ours.log"))
        started.append(start("reference", reference, env, work / "reference.log"))
        yield started
    finally:
        for server in started:
            stop(server)


def bench(args: argparse.Namespace) -> int:
    work = REPO / "bench-results" / datetime.now().strftime("lookup-%Y%m%d-%H%M%S")
    work.mkdir(parents=True)
    print(f"bench lookup: working in {work.relative_to(REPO)}", file=sys.stderr)
    if args.database == "postgresql":
        with postgres_database(args.postgres_url) as url:
            return measure(args, work, url)
    return measure(args, work, f"sqlite:///{work / 'giftcards.db'}")


def mint(env: dict[str, str], permissions: tuple[str, ...]) -> str:
    flags = [arg for name in permissions for arg in ("--permission", name)]
    command = [str(BIN / "giftcards"), "token", "--sub", "bench", *flags, "--ttl", "2h"]
    return run(command, env, timeout=60, capture=True).strip()


def measure(args: argparse.Namespace, work: Path, database_url: str) -> int:
    started = time.monotonic()
    env, codes_file, history_cards = prepare(work, args.cards, database_url)
    loaded_s = time.monotonic() - started
    scale: dict[str, Any] = {"load_seconds": loaded_s}
    if history_cards:
        scale["sizes"] = sizes(database_url, args.cards)
    # The storefront role's permissions without the role: its own budget (a few units in flight
    # per address) would refuse most of 32 connections from one address, and those refusals are
    # 200s. GIFTCARDS_CODE_ATTEMPT_LIMITS (UNREACHED_LIMIT) applies instead: counted, never reached.
    token = mint(env, STOREFRONT_PERMISSIONS)
    pairs = pick_codes(codes_file, seed=args.cards)
    bodies = work / "load-bodies.jsonl"
    bodies.write_text(
        "".join(json.dumps({"query": QUERY, "variables": {"code": code}}) + "\n" for _, code in pairs)
    )
    samples = [p for p in pairs if p[0] == "PHYSICAL"][: GATE_SAMPLES // 2] + [
        p for p in pairs if p[0] == "PERSONAL"
    ][: GATE_SAMPLES // 2]

    runs: list[Run] = []
    with servers_running(env, work, args.workers) as servers:
        keepalive = measure_servers(args, servers, token, samples, bodies, runs)
        scale["pinned_cpus"] = pinned_cpus(servers[0])  # by now every worker has started
        print(f"bench lookup: ours: {describe_pinning(scale['pinned_cpus'])}", file=sys.stderr)
        if history_cards:
            reader = mint(env, ("ListGiftCardTransactions",))
            timings = history_pages(servers[0].port, reader, history_cards)
            scale["history"] = [asdict(t) for t in timings]
    if history_cards:
        print("bench lookup: giftcards ledger verify …", file=sys.stderr)
        scale["ledger_verify"] = ledger_verify(env, work)
    return report(args, work, runs, keepalive, scale)


def measure_servers(
    args: argparse.Namespace,
    servers: list[Server],
    token: str,
    samples: list[tuple[str, str]],
    bodies: Path,
    runs: list[Run],
) -> dict[str, float]:
    """Checks the servers agree, probes a warm connection, then runs wrk by turns into ``runs``."""
    ours, reference = servers
    wait_ready(ours, token, "/healthz")
    wait_ready(reference, token, None)
    print(
        "bench lookup: servers " + ", ".join(f"{s.name} on :{s.port} (pid {s.process.pid})" for s in servers),
        file=sys.stderr,
    )
    check_answers(servers, samples, token)
    print(f"bench lookup: {len(samples)} sample lookups agree", file=sys.stderr)
    probe = {"query": QUERY, "variables": {"code": samples[0][1]}}
    keepalive = {server.name: keepalive_ms(server, probe, token) for server in servers}
    for name, ms in keepalive.items():
        stalled = " — responses wait for delayed ACKs (TCP_NODELAY off)" if ms >= NAGLE_MS else ""
        print(
            f"bench lookup: {name}: one lookup on a warm connection takes {ms:.1f} ms{stalled}",
            file=sys.stderr,
        )
    print(f"bench lookup: warming up, then {args.runs} x {args.duration}s per server", file=sys.stderr)
    for server in servers:
        wrk(server, args.warmup, args, bodies, token)
    for index in range(args.runs):
        for server in servers:
            result = wrk(server, args.duration, args, bodies, token)
            print(
                f"bench lookup: run {index + 1}/{args.runs} {server.name}: "
                f"{result.requests_per_second:.0f} req/s",
                file=sys.stderr,
            )
            runs.append(result)
    return keepalive


def report(
    args: argparse.Namespace, work: Path, runs: list[Run], keepalive: dict[str, float], scale: dict[str, Any]
) -> int:
    summary = summarise(runs, ["ours", "reference"])
    ratio = summary["ours"]["requests_per_second"] / summary["reference"]["requests_per_second"]
    cpu = {name: row["cpu_ms_per_request"] for name, row in summary.items()}
    cpu_ratio = cpu["reference"] / cpu["ours"] if cpu["ours"] and cpu["reference"] else None
    failed = [r for r in runs if r.non_2xx or r.socket_errors]
    print_table(runs, summary, ratio, cpu_ratio)
    if "sizes" in scale:
        print_sizes(scale["sizes"], args.cards)
    if "history" in scale:
        scale["history_ratio"] = print_history([PageTiming(**t) for t in scale["history"]])
    verify = scale.get("ledger_verify")
    if verify:
        print(
            f"\n{verify['verdict']} — {verify['rate'].removeprefix('ledger verify: ')}, "
            f"peak RSS {verify['peak_rss_mb']:.0f} MB"
        )
    (work / "results.json").write_text(
        json.dumps(
            {
                "started": work.name,
                "database": args.database,
                "cards": args.cards,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "connections": args.connections,
                "threads": args.threads,
                "workers": args.workers,
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "python": platform.python_version(),
                "runs": [asdict(r) for r in runs],
                "keepalive_ms": keepalive,
                "summary": summary,
                "ratio": ratio,
                "cpu_ratio": cpu_ratio,
                "target_ratio": TARGET_RATIO,
                **scale,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"results: {(work / 'results.json').relative_to(REPO)}")
    if failed:
        print(f"bench lookup: {len(failed)} run(s) had non-2xx responses or socket errors", file=sys.stderr)
        return 1
    if verify and not verify["clean"]:
        print("bench lookup: ledger verify is not clean", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # unwind, so servers are stopped
    try:
        return bench(args)
    except BenchError as exc:
        print(f"bench lookup: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench lookup: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
