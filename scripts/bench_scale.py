"""The PostgreSQL side of ``scripts/bench lookup --database postgresql``: a fresh database on
loopback, cards loaded by ``scripts/bulk_load.py``, table and index sizes, history pages of a card
with many entries against one with few, and ``giftcards ledger verify`` with its peak memory.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
TABLES = ("giftcards", "giftcard_codes", "giftcard_transactions")
HISTORY_ENTRIES = (10, 100_000)  # the two cards whose history pages are timed
HISTORY_REQUESTS = 50  # sequential requests per page, on one keep-alive connection
# Rows a page asks for: as many as the short history holds, so that every page timed holds as
# many rows and only the length of the history differs.
HISTORY_PAGE = min(HISTORY_ENTRIES)
HISTORY_QUERY = (
    "query History($filter: GiftCardTransactionFilter, $after: String) { giftcardTransactions("
    f"first: {HISTORY_PAGE}, after: $after, filter: $filter) "
    "{ edges { node { id transType amount balanceAfter createdAt } } "
    "pageInfo { hasNextPage endCursor } } }"
)
TRANSACTION_CURSOR = "gt:"  # app/domain/history.py's


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


@contextmanager
def postgres_database(base_url: str, who: str = "bench lookup") -> Iterator[str]:
    """A fresh database on the server of ``base_url`` (loopback only), dropped on the way out."""
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
        print(f"{who}: created PostgreSQL database {name}", file=sys.stderr)
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        if created:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"{who}: dropped PostgreSQL database {name}", file=sys.stderr)
        admin.dispose()


def bulk_load(env: dict[str, str], cards: int, codes_file: Path) -> dict[int, int]:
    """Loads the cards and the history cards; {entries: card id} of the latter."""
    command = [str(BIN / "python"), str(REPO / "scripts" / "bulk_load.py"), "--cards", str(cards)]
    command += ["--codes-file", str(codes_file)]
    for entries in HISTORY_ENTRIES:
        command += ["--history", str(entries)]
    try:
        done = subprocess.run(command, env=env, check=True, text=True, stdout=subprocess.PIPE)
    except subprocess.CalledProcessError as exc:
        raise BenchError(f"scripts/bulk_load.py failed with exit code {exc.returncode}") from None
    history = {}
    for line in done.stdout.splitlines():
        kind, count, card_id = line.split()
        if kind == "history":
            history[int(count)] = int(card_id)
    return history


def sizes(database_url: str, cards: int) -> list[dict[str, Any]]:
    """Each table's heap, each of its indexes, and all its indexes together: bytes, and MB per
    million cards."""
    query = text(
        "SELECT c.relname, CASE WHEN c.relkind = 'i' THEN 'index' ELSE 'table' END, "
        "pg_relation_size(c.oid), CASE WHEN c.relkind = 'r' THEN pg_indexes_size(c.oid) END "
        "FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid "
        "WHERE c.oid = ANY(CAST(:tables AS regclass[])) OR i.indrelid = ANY(CAST(:tables AS regclass[])) "
        "ORDER BY coalesce(i.indrelid, c.oid), c.relkind DESC, c.relname"
    )
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(query, {"tables": list(TABLES)}).all()
    finally:
        engine.dispose()
    millions = max(cards, 1) / 1_000_000
    out = []
    for name, kind, size, indexes in rows:
        entry = {"name": name, "kind": kind, "bytes": size, "mb_per_million_cards": size / 2**20 / millions}
        if indexes is not None:
            entry["indexes_bytes"] = indexes
            entry["indexes_mb_per_million_cards"] = indexes / 2**20 / millions
        out.append(entry)
    return out


def print_sizes(rows: list[dict[str, Any]], cards: int) -> None:
    extra = sum(HISTORY_ENTRIES)
    print(f"\nsizes at {cards:,} cards (the ledger also holds the history cards' {extra:,} rows)")
    print(f"{'':<48} {'MB':>9} {'MB per 1M cards':>16}")
    for row in rows:
        label = row["name"] if row["kind"] == "table" else f"  {row['name']}"
        print(f"{label:<48} {row['bytes'] / 2**20:>9.1f} {row['mb_per_million_cards']:>16.1f}")
        if "indexes_bytes" in row:
            mb = row["indexes_bytes"] / 2**20
            print(f"{'  (all its indexes)':<48} {mb:>9.1f} {row['indexes_mb_per_million_cards']:>16.1f}")


@dataclass
class PageTiming:
    page: str
    entries: int
    median_ms: float
    p90_ms: float
    rows: int


def _cursor(entry_id: int) -> str:
    return urlsafe_b64encode(f"{TRANSACTION_CURSOR}{entry_id}".encode()).decode().rstrip("=")


def time_page(port: int, token: str, card_id: int, after: str | None) -> tuple[list[float], int]:
    """Milliseconds of HISTORY_REQUESTS sequential requests for one page (after a warm one), and
    the rows it holds."""
    body = json.dumps(
        {"query": HISTORY_QUERY, "variables": {"filter": {"giftcardId": str(card_id)}, "after": after}}
    )
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, rows = [], 0
    try:
        for _ in range(HISTORY_REQUESTS + 1):
            started = time.perf_counter()
            connection.request("POST", "/graphql", body, headers)
            answer = json.loads(connection.getresponse().read())
            times.append((time.perf_counter() - started) * 1000)
            page = (answer.get("data") or {}).get("giftcardTransactions")
            if answer.get("errors") or not page:
                raise BenchError(f"a history page failed: {json.dumps(answer)[:300]}")
            rows = len(page["edges"])
    finally:
        connection.close()
    return times[1:], rows


def history_pages(port: int, token: str, cards: dict[int, int]) -> list[PageTiming]:
    """The first page of each history card, and a page from the middle of the longest history,
    timed by turns (few, many, middle, few, …) in rounds."""
    pages: list[tuple[str, int, int, str | None]] = [
        ("first", entries, card_id, None) for entries, card_id in sorted(cards.items())
    ]
    longest, card_id = max(cards.items())
    # Ledger ids of a history card follow its own id one by one (scripts/bulk_load.py).
    pages.append(("middle", longest, card_id, _cursor(card_id + 1 + longest // 2)))
    samples: dict[int, list[float]] = {index: [] for index in range(len(pages))}
    rows: dict[int, int] = {}
    for _ in range(3):
        for index, (_, _, card, after) in enumerate(pages):
            times, rows[index] = time_page(port, token, card, after)
            samples[index] += times
    return [
        PageTiming(
            page=name,
            entries=entries,
            median_ms=statistics.median(samples[index]),
            p90_ms=statistics.quantiles(samples[index], n=10)[-1],
            rows=rows[index],
        )
        for index, (name, entries, _, _) in enumerate(pages)
    ]


def print_history(timings: list[PageTiming]) -> float:
    """Prints the table and the ratio many/few of the first pages' medians; returns the ratio."""
    print(f"\n{'history page':<14} {'entries':>9} {'rows':>5} {'median ms':>10} {'p90 ms':>8}")
    for timing in timings:
        print(
            f"{timing.page:<14} {timing.entries:>9,} {timing.rows:>5} {timing.median_ms:>10.2f} "
            f"{timing.p90_ms:>8.2f}"
        )
    first = {t.entries: t.median_ms for t in timings if t.page == "first"}
    ratio = first[max(first)] / first[min(first)]
    print(f"ratio history page {max(first):,} entries / {min(first):,} entries (median): {ratio:.2f}")
    return ratio


def ledger_verify(env: dict[str, str], work: Path) -> dict[str, Any]:
    """Runs ``giftcards ledger verify``; its verdict, seconds, and peak RSS (from wait4)."""
    out_path, err_path = work / "ledger-verify.out", work / "ledger-verify.err"
    started = time.monotonic()
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [str(BIN / "giftcards"), "ledger", "verify"], env=env, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    lines = out_path.read_text().splitlines() or err_path.read_text().splitlines()[-1:]
    rate = [line for line in err_path.read_text().splitlines() if " cards in " in line]
    return {
        "clean": process.returncode == 0,
        "verdict": lines[-1] if lines else "",
        "rate": rate[-1] if rate else "",
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
    }
