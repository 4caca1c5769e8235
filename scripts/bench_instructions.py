"""Instructions a request costs, counted rather than timed: lookups and debits driven through the
whole application in one process, under valgrind's callgrind.

Timings on a shared 2-core machine move by more than a small change saves (CPU per request varies
by 5 to 20 % between runs of the same code). Callgrind counts the instructions the process runs,
which do not depend on what else the machine is doing: two runs of the same code give the same
count within a few tenths of a per cent. So a change of one or two per cent in what a request costs
is seen, and can be compared before and after it.

Each kind of request is driven twice, with ``FEW`` and ``FEW + --requests`` requests after the same
start-up (imports, the app built, ``WARMUP`` requests); the difference of the two counts divided by
``--requests`` is one request's instructions, start-up cancelled out. The two runs of a kind go side
by side. The requests are those of the benchmarks over HTTP, as ASGI calls (no sockets, no HTTP
parsing): masked lookups by code with the storefront's permissions (``bench lookup``), and debits
of 0.01 spread over the cards with a pos token (``bench tx``), on a fresh SQLite file under
``bench-results/`` with ``--cards`` demo cards, JSON log lines on, as in production. Counts are of
user space only (a write's system call, the kernel's scheduling are not counted), and of one build
of Python: compare counts made on one machine. Needs valgrind (Debian's package). Run it through
``scripts/bench instructions``; results also go to ``results.json`` in the run's directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import uvloop
from bench_lookup import QUERY, REPO, STOREFRONT_PERMISSIONS, BenchError, mint, pick_codes, prepare, run
from bench_scale import BIN
from bench_tx import debit_body, physical_codes

KINDS = ("lookup", "debit")
FEW = 100  # requests in the shorter of a kind's two runs
WARMUP = 20  # requests before either run counts (caches filled, statements prepared)
_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.M)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench instructions", description=__doc__)
    parser.add_argument("--kinds", default=",".join(KINDS), help="lookup, debit or both (default)")
    parser.add_argument("--requests", type=int, default=500, help="requests counted per kind (default 500)")
    parser.add_argument("--cards", type=int, default=2000, help="demo cards to load (default 2000)")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)  # the counted process's work dir
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)  # … and its requests
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    if not kinds or any(kind not in KINDS for kind in kinds):
        parser.error(f"--kinds: expected some of {', '.join(KINDS)}, got {args.kinds!r}")
    if args.requests < 1 or args.cards < 1:
        parser.error("--requests and --cards must be at least 1")
    args.kinds = kinds
    return args


def collected(valgrind_output: str) -> int:
    """The instructions callgrind counted, from what valgrind printed."""
    found = _COLLECTED.findall(valgrind_output)
    if len(found) != 1:
        raise BenchError("valgrind printed no instruction count (is valgrind installed, did the run fail?)")
    return int(found[0])


def per_request(short: int, long: int, requests: int) -> int:
    """One request's instructions, from the counts of runs with FEW and FEW + ``requests``."""
    if long <= short:
        raise BenchError(f"the longer run counted {long} instructions, not more than the shorter's {short}")
    return round((long - short) / requests)


def write_inputs(work: Path, cards: int) -> dict[str, str]:
    """A migrated SQLite file with demo cards, each kind's request bodies and token (``inputs.json``
    in ``work``); the environment the app is driven in."""
    env, codes_file, _ = prepare(work, cards, f"sqlite:///{work / 'giftcards.db'}")
    env = {**env, "GIFTCARDS_LOG_FORMAT": "json", "GIFTCARDS_LOG_LEVEL": "info"}
    lookups = [
        {"query": QUERY, "variables": {"code": code}} for _, code in pick_codes(codes_file, seed=cards)
    ]
    pos = [str(BIN / "giftcards"), "token", "--sub", "bench-pos", "--role", "pos", "--ttl", "2h"]
    inputs = {
        "lookup": {"token": mint(env, STOREFRONT_PERMISSIONS), "bodies": lookups},
        "debit": {
            "token": run(pos, env, timeout=60, capture=True).strip(),
            "bodies": [debit_body(code) for code in physical_codes(codes_file)],
        },
    }
    (work / "inputs.json").write_text(json.dumps(inputs))
    return env


def count(work: Path, kind: str, requests: int, env: dict[str, str]) -> int:
    """``kind``'s instructions per request: its two runs under callgrind, side by side."""
    runs = []
    for total in (FEW, FEW + requests):
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={work / f'callgrind.{kind}.{total}'}",
            str(BIN / "python"),
            str(Path(__file__).resolve()),
            *("--drive", str(work), "--kinds", kind, "--count", str(total)),
        ]
        log = work / f"callgrind.{kind}.{total}.log"
        with log.open("w") as out:  # the child holds its own copy of the file
            runs.append((subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT), log))
    counts = []
    for process, log in runs:
        failed = process.wait()
        if failed:
            raise BenchError(f"the counted run failed (exit {failed}); see {log}")
        counts.append(collected(log.read_text()))
    return per_request(counts[0], counts[1], requests)


# --- the counted process: the app in this process, driven by ASGI calls ---------------------------


def drive(work: Path, kind: str, total: int) -> None:
    """WARMUP requests of ``kind``, then ``total`` more, through the app built as a worker builds it;
    raises BenchError on any answer but a 200 without errors."""
    from app.config import load_settings  # the app is imported here only, in the counted process
    from app.http import create_app
    from app.logs import configure_logging, request_log

    inputs = json.loads((work / "inputs.json").read_text())[kind]
    settings = load_settings(os.environ)
    configure_logging(settings)
    app = create_app(settings, freeze_gc=True, sinks=[request_log(settings)])
    bodies = [json.dumps(body).encode() for body in inputs["bodies"]]
    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {inputs['token']}".encode()),
    ]

    async def requests() -> None:
        state: dict[str, Any] = {}
        async with _Lifespan(app, state):
            for index in range(WARMUP + total):
                await _post(app, state, headers, bodies[index % len(bodies)])

    uvloop.run(requests())  # the event loop uvicorn runs a worker on


class _Lifespan:
    """The app's lifespan around a block: started before, shut down after."""

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self._app, self._state = app, state
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def __aenter__(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self._state}
        self._task = asyncio.create_task(self._app(scope, self._to_app.get, self._from_app.put))
        await self._tell("startup")

    async def __aexit__(self, *_: object) -> None:
        await self._tell("shutdown")
        await self._task

    async def _tell(self, what: str) -> None:
        await self._to_app.put({"type": f"lifespan.{what}"})
        answer = await self._from_app.get()
        if answer["type"] != f"lifespan.{what}.complete":
            raise BenchError(f"the app's {what} failed: {answer}")


async def _post(app: Any, state: dict[str, Any], headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": state,
    }
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # the app asks again only to hear of a disconnect: none comes
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    answer = b"".join(message.get("body", b"") for message in sent[1:])
    if sent[0].get("status") != 200 or b'"errors"' in answer:
        raise BenchError(f"a request was answered {sent[0].get('status')}: {answer[:300]!r}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.drive is not None:
            drive(args.drive, args.kinds[0], args.count)
            return 0
        work = REPO / "bench-results" / datetime.now().strftime("instructions-%Y%m%d-%H%M%S")
        work.mkdir(parents=True)
        print(f"bench instructions: working in {work.relative_to(REPO)}", file=sys.stderr)
        env = write_inputs(work, args.cards)
        results = {}
        for kind in args.kinds:
            print(f"bench instructions: counting {kind}s under callgrind …", file=sys.stderr)
            results[kind] = count(work, kind, args.requests, env)
            print(f"instructions per {kind}: {results[kind]:,} (of {args.requests} {kind}s, SQLite)")
        (work / "results.json").write_text(json.dumps({"requests": args.requests, "per_request": results}))
    except BenchError as exc:
        print(f"bench instructions: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
