"""Attack drill: both sides of the code attempt budgets, from one run.

Each scenario starts a fresh ``giftcards serve`` on loopback over one SQLite file (the demo cards
and ``--cards`` random ones) with the shipped ``permissions.yaml`` and its role budgets. Client
addresses other than loopback are given in ``X-Forwarded-For``, which the server trusts from
loopback (``GIFTCARDS_FORWARDED_ALLOW_IPS``).

Honest traffic, to be served without a single RATE_LIMITED, 2 workers sharing Redis:

- ``pos``: a ``pos`` token, ``--connections`` (32) connections from one address for
  ``--seconds``, debiting 0.01 by PHYSICAL code; ``--typos`` (1.5 %) of the codes are mistyped
  (one character changed), misses that answer CARD_NOT_USABLE;
- ``storefront``: a ``storefront`` token, as many connections, looking up valid codes, each
  request from one of ``--customers`` (500) addresses.

Guesses by a leaked storefront token, 1,000 well-formed random codes per scenario, to resolve
(be looked up, found or not) no more than the role's budget allows in the time they took:

- ``single``: one lookup per request, 1 worker, one address;
- ``aliases-50``: 20 documents of 50 aliased lookups (over the alias limit), refused whole;
- ``aliases-15``: documents of 15 aliased lookups (the alias limit), 1 worker, one address;
- ``workers-redis``: one lookup per request, 2 workers sharing Redis, one address;
- ``addresses-50``: the same from 50 addresses: the per-address budget 50 times over, and the
  subject's budget over all of them;
- ``workers-memory``: 2 workers, each counting alone (reported, not checked: up to twice the
  budget gets through, which is why several workers need Redis).

After each guessing scenario a trusted token (the admin role) looks a demo card up 100 times from
the attacker's address; every one must resolve. Prints a table per side (``--json``: JSON) and
exits non-zero if honest traffic was refused or failed, or guesses resolved more than allowed.
Run it through ``scripts/attack``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_lookup import BIN, REPO, BenchError, Server, post, run, server_env, start, stop, wait_ready

sys.path.insert(0, str(REPO))
from app.auth.throttle import Limits
from app.demo import WELL_KNOWN
from app.policy_file import load_policy

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
GUESSES = 1_000
DEMO_CODE = "G59220000045"  # a demo PHYSICAL code the trusted token looks up
LOOKUP = "query L($c: String!) { giftcard(code: $c) { results { id balance } } }"
DEBIT = """mutation D($trans: GiftCardTransInput!) { giftcardTransAdd(trans: $trans) { id balance } }"""
ATTACKER = "198.51.100.66"


@dataclass(frozen=True)
class Guessing:
    name: str
    workers: int
    redis: bool
    aliases: int  # 0: one lookup per request
    addresses: int = 1
    enforced: bool = True  # False: reported, not checked


GUESSING = (
    Guessing("single", 1, False, 0),
    Guessing("aliases-50", 1, False, 50),
    Guessing("aliases-15", 1, False, 15),
    Guessing("workers-redis", 2, True, 0),
    Guessing("addresses-50", 2, True, 0, addresses=50),
    Guessing("workers-memory", 2, False, 0, enforced=False),
)
HONEST = ("pos", "storefront")


@dataclass
class HonestOutcome:
    scenario: str
    workers: int
    connections: int
    addresses: int
    seconds: float
    requests: int
    served: int  # debits or lookups that did what was asked
    per_second: float
    typos: int  # mistyped codes sent
    typos_refused: int  # … answered CARD_NOT_USABLE, as a miss is
    rate_limited: int
    other_errors: int
    other: dict[str, int]  # what the other errors were
    ok: bool


@dataclass
class GuessOutcome:
    scenario: str
    workers: int
    counters: str
    addresses: int
    requests: int
    guesses: int
    looked_up: int
    rate_limited: int
    refused_documents: int  # whole documents refused before running (alias limit)
    other_errors: int
    seconds: float
    allowed: int
    trusted_resolved: int
    enforced: bool
    ok: bool


class KeptAlive(threading.local):
    """Each thread's own keep-alive connection to the server, as a till's HTTP client keeps one.
    Threads are never idle long enough for the server to close it; a failure is not retried (a
    debit sent twice would be two debits)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.connection: http.client.HTTPConnection | None = None

    def post(self, body: dict[str, Any], token: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        sent = {"content-type": "application/json", "authorization": f"Bearer {token}", **(headers or {})}
        self.connection.request("POST", "/graphql", json.dumps(body), sent)
        return dict(json.loads(self.connection.getresponse().read()))


def random_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(14))


def mistyped(code: str, rng: random.Random) -> str:
    at = rng.randrange(1, len(code))  # the type letter stays
    return code[:at] + rng.choice([c for c in ALPHABET if c != code[at]]) + code[at + 1 :]


def allowance(limits: Limits, seconds: float) -> int:
    """The most units ``limits`` let be kept in an attack lasting ``seconds``."""
    return min(item.amount * math.ceil(max(seconds, 0.001) / item.get_expiry()) for item in limits)


def tally(reply: dict[str, Any]) -> tuple[int, int, int, int]:
    """(looked up, rate limited, documents refused whole, other errors) in one reply.

    Root fields are nullable: each field is answered or refused on its own."""
    data = reply.get("data") or {}
    codes = [error.get("extensions", {}).get("code") for error in reply.get("errors", [])]
    looked_up = sum(1 for value in data.values() if value is not None)
    limited = codes.count("RATE_LIMITED")
    refused = 1 if reply.get("data") is None and "GRAPHQL_VALIDATION_FAILED" in codes else 0
    other = len(codes) - limited - codes.count("GRAPHQL_VALIDATION_FAILED")
    return looked_up, limited, refused, other


class Drill:
    """One database, tokens and codes for every scenario."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.env = server_env(f"sqlite:///{work / 'giftcards.db'}", work)
        self.env["GIFTCARDS_LOG_LEVEL"] = "warning"
        giftcards = str(BIN / "giftcards")
        codes_file = work / "codes.tsv"
        print(f"attack: loading {args.cards} random cards …", file=sys.stderr)
        run([giftcards, "db", "upgrade"], self.env, timeout=120, capture=True)
        run(
            [giftcards, "demo-data", "--cards", str(args.cards), "--codes-file", str(codes_file)],
            self.env,
            timeout=1800,
            capture=True,
        )
        well_known = {card.physical for card in WELL_KNOWN}  # one has a PIN: not for these tills
        self.codes = [
            code
            for code_type, _, code in (line.partition("\t") for line in codes_file.read_text().splitlines())
            if code_type == "PHYSICAL" and code not in well_known
        ]
        self.tokens = {
            role: run([giftcards, "token", "--sub", sub, "--role", role], self.env, 60, capture=True).strip()
            for role, sub in (("storefront", "shop"), ("pos", "store-12"), ("admin", "office"))
        }
        self.budget = load_policy(REPO / "permissions.yaml").budgets["storefront"]

    def serve(self, name: str, workers: int, redis: bool) -> Server:
        env = dict(self.env)
        if redis:
            env["GIFTCARDS_REDIS_URL"] = self.args.redis_url
            env["GIFTCARDS_REDIS_PREFIX"] = f"attack-{secrets.token_hex(6)}"  # fresh counters
        # Several workers on the SQLite file too: the scenarios are of budgets shared between processes.
        command = [str(BIN / "giftcards"), "serve", "--workers", str(workers), "--sqlite-multiprocess"]
        server = start(name, command, env, self.work / f"{name}.log")
        try:
            wait_ready(server, self.tokens["admin"], "/readyz")
        except BaseException:
            stop(server)
            raise
        return server

    # --- honest traffic --------------------------------------------------------------------------

    def honest(self, scenario: str) -> HonestOutcome:
        args, rng_lock = self.args, threading.Lock()
        rng = random.Random(7)
        pos = scenario == "pos"
        token = self.tokens["pos" if pos else "storefront"]
        customers = [f"203.0.{n // 250}.{n % 250 + 1}" for n in range(args.customers)]
        server = self.serve(scenario, 2, redis=True)
        kept = KeptAlive(server)
        counts: Counter[str] = Counter()
        other: Counter[str] = Counter()
        deadline = time.monotonic() + args.seconds

        def one() -> None:
            with rng_lock:
                code = rng.choice(self.codes)
                typo = pos and rng.random() < args.typos
                address = None if pos else rng.choice(customers)
            if typo:
                code = mistyped(code, rng)
            if pos:
                trans = {"transType": "USE", "amount": "-0.01", "codeType": "PHYSICAL", "code": code}
                reply = kept.post({"query": DEBIT, "variables": {"trans": trans}}, token)
            else:
                reply = kept.post(
                    {"query": LOOKUP, "variables": {"c": code}},
                    token,
                    {"x-forwarded-for": address} if address else None,
                )
            errors = [error.get("extensions", {}).get("code") for error in reply.get("errors", [])]
            served = not errors and (pos or bool((reply.get("data") or {})["giftcard"]["results"]))
            with rng_lock:
                counts["requests"] += 1
                counts["typos"] += typo
                if served and not typo:
                    counts["served"] += 1
                elif typo and errors == ["CARD_NOT_USABLE"]:
                    counts["typos_refused"] += 1
                elif "RATE_LIMITED" in errors:
                    counts["rate_limited"] += 1
                else:
                    counts["other_errors"] += 1
                    what = ",".join(map(str, errors)) or ("served though mistyped" if typo else "not found")
                    other[what] += 1

        def connection(_: int) -> None:
            while time.monotonic() < deadline:
                one()

        started = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=args.connections) as pool:
                list(pool.map(connection, range(args.connections)))
        finally:
            stop(server)
        seconds = time.monotonic() - started
        ok = counts["rate_limited"] == 0 and counts["other_errors"] == 0 and counts["served"] > 0
        return HonestOutcome(
            scenario,
            2,
            args.connections,
            1 if pos else len(customers),
            round(seconds, 2),
            counts["requests"],
            counts["served"],
            round(counts["served"] / seconds, 1),
            counts["typos"],
            counts["typos_refused"],
            counts["rate_limited"],
            counts["other_errors"],
            dict(other),
            ok,
        )

    # --- guesses ---------------------------------------------------------------------------------

    def guesses(self, scenario: Guessing) -> GuessOutcome:
        if scenario.aliases:
            sizes = [scenario.aliases] * math.ceil(GUESSES / scenario.aliases)
            bodies: list[dict[str, Any]] = [
                {
                    "query": "query { "
                    + " ".join(
                        f'g{n}: giftcard(code: "{random_code()}") {{ limitedByPermission }}'
                        for n in range(size)
                    )
                    + " }"
                }
                for size in sizes
            ]
        else:
            bodies = [{"query": LOOKUP, "variables": {"c": random_code()}} for _ in range(GUESSES)]
        addresses = (
            [ATTACKER]
            if scenario.addresses == 1
            else [f"198.51.100.{n + 1}" for n in range(scenario.addresses)]
        )
        server = self.serve(scenario.name, scenario.workers, scenario.redis)
        kept, token = KeptAlive(server), self.tokens["storefront"]

        def send(numbered: tuple[int, dict[str, Any]]) -> dict[str, Any]:
            number, body = numbered
            return kept.post(body, token, {"x-forwarded-for": addresses[number % len(addresses)]})

        try:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=self.args.connections) as pool:
                replies = list(pool.map(send, enumerate(bodies)))
            seconds = time.monotonic() - started
            trusted = sum(
                1
                for _ in range(100)
                if (
                    post(
                        server,
                        {"query": LOOKUP, "variables": {"c": DEMO_CODE}},
                        self.tokens["admin"],
                        {"x-forwarded-for": ATTACKER},
                    ).get("data")
                    or {}
                )
                .get("giftcard", {})
                .get("results")
            )
        finally:
            stop(server)
        looked_up, limited, refused, other = (
            sum(column) for column in zip(*map(tally, replies), strict=True)
        )
        allowed = min(
            len(addresses) * allowance(self.budget.per_address, seconds),
            allowance(self.budget.per_subject, seconds),
        )
        ok = trusted == 100 and other == 0 and (looked_up <= allowed or not scenario.enforced)
        return GuessOutcome(
            scenario.name,
            scenario.workers,
            "redis" if scenario.redis else "memory",
            len(addresses),
            len(replies),
            sum(body["query"].count("giftcard(") for body in bodies),
            looked_up,
            limited,
            refused,
            other,
            round(seconds, 2),
            allowed,
            trusted,
            scenario.enforced,
            ok,
        )


def print_tables(budget: str, honest: list[HonestOutcome], guessed: list[GuessOutcome]) -> None:
    if honest:
        print("honest traffic (2 workers, Redis)")
        print(
            "scenario | connections | addresses | seconds | requests | served | served/s | typos "
            "| typos refused | RATE_LIMITED | other errors | result"
        )
        for h in honest:
            print(
                " | ".join(
                    str(value)
                    for value in (
                        h.scenario,
                        h.connections,
                        h.addresses,
                        h.seconds,
                        h.requests,
                        h.served,
                        h.per_second,
                        h.typos,
                        h.typos_refused,
                        h.rate_limited,
                        h.other_errors,
                        "ok" if h.ok else "FAIL",
                    )
                )
            )
            if h.other:
                print(f"  other errors: {h.other}")
    if guessed:
        print(f"\nguesses by a leaked storefront token ({budget})")
        print(
            "scenario | workers | counters | addresses | requests | guesses | looked up | allowed "
            "| RATE_LIMITED | refused docs | seconds | trusted | result"
        )
        for g in guessed:
            result = ("ok" if g.enforced else "reported") if g.ok else "FAIL"
            print(
                " | ".join(
                    str(value)
                    for value in (
                        g.scenario,
                        g.workers,
                        g.counters,
                        g.addresses,
                        g.requests,
                        g.guesses,
                        g.looked_up,
                        g.allowed,
                        g.rate_limited,
                        g.refused_documents,
                        g.seconds,
                        f"{g.trusted_resolved}/100",
                        result,
                    )
                )
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [*HONEST, *(g.name for g in GUESSING)]
    parser.add_argument(
        "--scenarios", default=",".join(names), help="comma-separated subset of: " + ", ".join(names)
    )
    parser.add_argument("--connections", type=int, default=32, help="parallel connections (default 32)")
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="honest traffic per scenario (default 15)"
    )
    parser.add_argument(
        "--typos", type=float, default=0.015, help="share of mistyped POS codes (default 0.015)"
    )
    parser.add_argument("--customers", type=int, default=500, help="storefront addresses (default 500)")
    parser.add_argument("--cards", type=int, default=2000, help="random cards loaded (default 2000)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    chosen = args.scenarios.split(",")
    if not set(chosen) <= set(names) or not chosen:
        parser.error(f"unknown scenario in {args.scenarios!r}")
    with tempfile.TemporaryDirectory(prefix="giftcards-attack-") as folder:
        drill = Drill(args, Path(folder))
        honest: list[HonestOutcome] = []
        guessed: list[GuessOutcome] = []
        for name in HONEST:
            if name in chosen:
                print(f"attack: {name} …", file=sys.stderr)
                honest.append(drill.honest(name))
        for scenario in GUESSING:
            if scenario.name in chosen:
                print(f"attack: {scenario.name} …", file=sys.stderr)
                guessed.append(drill.guesses(scenario))
        budget = (
            f"per subject {';'.join(map(str, drill.budget.per_subject))}, "
            f"per address {';'.join(map(str, drill.budget.per_address))}"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "budget": budget,
                    "honest": [asdict(h) for h in honest],
                    "guesses": [asdict(g) for g in guessed],
                },
                indent=2,
            )
        )
    else:
        print_tables(budget, honest, guessed)
    return 0 if all(outcome.ok for outcome in honest) and all(outcome.ok for outcome in guessed) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"attack: {exc}", file=sys.stderr)
        sys.exit(2)
