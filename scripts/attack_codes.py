"""Brute-force drill: a leaked storefront token guesses 1,000 well-formed random codes.

Each scenario starts a fresh ``giftcards serve`` on loopback (SQLite with the demo cards, the
default attempt limits unless ``--limits`` is given) and fires the guesses from ``--connections``
parallel connections, as fast as it can or spread evenly over ``--duration`` seconds:

- ``single``: one lookup per request, 1 worker;
- ``aliases-50``: 20 documents of 50 aliased lookups each (over the alias limit), 1 worker;
- ``aliases-15``: documents of 15 aliased lookups (the alias limit) until 1,000 codes, 1 worker;
- ``workers-redis``: one lookup per request, 2 workers sharing counters in Redis;
- ``workers-memory``: the same with counters in each worker's memory (for comparison: each
  worker counts alone, so up to twice the limit resolves; this is why several workers need Redis).

A guess counts as looked up when the server ran the lookup, found or not, and as answered when
the attacker saw its result. In a document, the field over the limit is refused, the fields before
it were looked up, and (the result type being non-null) the whole document answers nothing.
After the guesses, a trusted token (the admin role) looks up a demo card 100 times from the same
address; every one must resolve. The allowed number of resolved guesses is what the limits permit
within the time the attack took (for ``30/minute;10/10 seconds`` and an attack under 10 s: 10).

Prints a table and exits non-zero if a scenario resolved more than allowed (the memory comparison
only reports) or a trusted lookup failed. ``--json`` prints the results as JSON instead.
Run it through ``scripts/attack``.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_lookup import BIN, BenchError, Server, post, run, server_env, start, stop, wait_ready
from limits import parse_many

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
GUESSES = 1_000
DEMO_CODE = "G59220000045"  # a demo PHYSICAL code the trusted token looks up
LOOKUP = "query L($c: String!) { giftcard(code: $c) { results { id balance } } }"
DEFAULT_LIMITS = "30/minute;10/10 seconds"


@dataclass
class Scenario:
    name: str
    workers: int
    redis: bool
    aliases: int  # 0: one lookup per request
    enforced: bool = True  # False: reported, not checked


SCENARIOS = (
    Scenario("single", 1, False, 0),
    Scenario("aliases-50", 1, False, 50),
    Scenario("aliases-15", 1, False, 15),
    Scenario("workers-redis", 2, True, 0),
    Scenario("workers-memory", 2, False, 0, enforced=False),
)


@dataclass
class Outcome:
    scenario: str
    workers: int
    counters: str
    requests: int
    guesses: int
    looked_up: int
    answered: int
    rate_limited: int
    refused_documents: int  # whole documents refused before running (alias limit)
    other_errors: int
    seconds: float
    allowed: int
    trusted_resolved: int
    ok: bool


def random_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(14))


def document(count: int) -> str:
    fields = (f'g{n}: giftcard(code: "{random_code()}") {{ limitedByPermission }}' for n in range(count))
    return "query { " + " ".join(fields) + " }"


def allowed(limits: str, seconds: float) -> int:
    """The most guesses the limits let through in an attack lasting ``seconds``."""
    windows = ((item.amount, item.get_expiry()) for item in parse_many(limits))
    return min(amount * math.ceil(max(seconds, 0.001) / window) for amount, window in windows)


def tally(reply: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(looked up, answered, rate limited, documents refused whole, other errors) in one reply."""
    data = reply.get("data") or {}
    answered = sum(1 for value in data.values() if value is not None)
    errors = reply.get("errors", [])
    codes = [error.get("extensions", {}).get("code") for error in errors]
    limited = codes.count("RATE_LIMITED")
    looked_up = answered
    if limited and reply.get("data") is None:
        # Fields run in order: the refused one's alias (gN, or the single field) tells how many ran.
        path = next(error["path"][0] for error in errors if error["extensions"]["code"] == "RATE_LIMITED")
        looked_up = int(path[1:]) if path.startswith("g") and path[1:].isdigit() else 0
    refused = 1 if reply.get("data") is None and "GRAPHQL_VALIDATION_FAILED" in codes else 0
    other = len(codes) - limited - codes.count("GRAPHQL_VALIDATION_FAILED")
    return looked_up, answered, limited, refused, other


def attack(
    server: Server, token: str, scenario: Scenario, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], int]:
    if scenario.aliases:
        sizes = [scenario.aliases] * math.ceil(GUESSES / scenario.aliases)
        bodies = [{"query": document(size)} for size in sizes]
    else:
        bodies = [{"query": LOOKUP, "variables": {"c": random_code()}} for _ in range(GUESSES)]
    started, spacing = time.monotonic(), args.duration / len(bodies)

    def send(numbered: tuple[int, dict[str, Any]]) -> dict[str, Any]:
        number, body = numbered
        delay = started + number * spacing - time.monotonic()  # paced evenly over --duration
        if delay > 0:
            time.sleep(delay)
        return post(server, body, token)

    with ThreadPoolExecutor(max_workers=args.connections) as pool:
        replies = list(pool.map(send, enumerate(bodies)))
    return replies, sum(len(body["query"].split("giftcard(")) - 1 for body in bodies)


def trusted_lookups(server: Server, token: str) -> int:
    found = 0
    for _ in range(100):
        reply = post(server, {"query": LOOKUP, "variables": {"c": DEMO_CODE}}, token)
        if not reply.get("errors") and reply["data"]["giftcard"]["results"]:
            found += 1
    return found


def play(scenario: Scenario, args: argparse.Namespace, work: Path) -> Outcome:
    env = server_env(f"sqlite:///{work / 'giftcards.db'}", work, args.limits)
    env["GIFTCARDS_LOG_LEVEL"] = "warning"
    if scenario.redis:
        env["GIFTCARDS_REDIS_URL"] = args.redis_url
        env["GIFTCARDS_REDIS_PREFIX"] = f"attack-{secrets.token_hex(6)}"  # fresh counters
    giftcards = str(BIN / "giftcards")
    if not (work / "giftcards.db").exists():
        run([giftcards, "db", "upgrade"], env, timeout=120, capture=True)  # keeps stdout for results
        run([giftcards, "demo-data"], env, timeout=300, capture=True)
    leaked = run([giftcards, "token", "--sub", "leaked-shop", "--role", "storefront"], env, 60,
                 capture=True).strip()
    trusted = run([giftcards, "token", "--sub", "back-office", "--role", "admin"], env, 60,
                  capture=True).strip()
    server = start(scenario.name, [giftcards, "serve", "--workers", str(scenario.workers)], env,
                   work / f"{scenario.name}.log")
    try:
        wait_ready(server, trusted, "/readyz")
        started = time.monotonic()
        replies, guesses = attack(server, leaked, scenario, args)
        seconds = time.monotonic() - started
        trusted_found = trusted_lookups(server, trusted)
    finally:
        stop(server)
    looked_up, answered, limited, refused, other = (
        sum(column) for column in zip(*map(tally, replies), strict=True))
    permitted = allowed(args.limits, seconds)
    ok = trusted_found == 100 and other == 0 and (looked_up <= permitted or not scenario.enforced)
    return Outcome(scenario.name, scenario.workers, "redis" if scenario.redis else "memory", len(replies),
                   guesses, looked_up, answered, limited, refused, other, round(seconds, 2), permitted,
                   trusted_found, ok)


def print_table(outcomes: list[Outcome], limits: str) -> None:
    print(f"attempt limits: {limits} (per token subject and per client address)")
    header = ("scenario", "workers", "counters", "requests", "guesses", "looked up", "answered", "allowed",
              "RATE_LIMITED", "refused docs", "seconds", "trusted", "result")
    print(" | ".join(header))
    for o in outcomes:
        result = "ok" if o.ok else "FAIL"
        if o.ok and not SCENARIOS[[s.name for s in SCENARIOS].index(o.scenario)].enforced:
            result = "reported"
        print(" | ".join(str(value) for value in (
            o.scenario, o.workers, o.counters, o.requests, o.guesses, o.looked_up, o.answered, o.allowed,
            o.rate_limited,
            o.refused_documents, o.seconds, f"{o.trusted_resolved}/100", result)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limits", default=DEFAULT_LIMITS, help=f"attempt limits (default {DEFAULT_LIMITS})")
    parser.add_argument("--connections", type=int, default=8, help="parallel connections (default 8)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="spread the guesses evenly over this many seconds (default 0: at once)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                        help="comma-separated subset of: " + ", ".join(s.name for s in SCENARIOS))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]
    if not chosen:
        parser.error("no known scenario chosen")
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="giftcards-attack-") as folder:
        work = Path(folder)
        for scenario in chosen:
            print(f"attack: {scenario.name} …", file=sys.stderr)
            outcomes.append(play(scenario, args, work))
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes], indent=2))
    else:
        print_table(outcomes, args.limits)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"attack: {exc}", file=sys.stderr)
        sys.exit(2)
