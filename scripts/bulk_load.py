"""Bulk loader for benchmarks: millions of random demo cards into an empty, migrated PostgreSQL
database, by COPY.

Each card gets what ``giftcards demo-data`` gives a random card: a PHYSICAL, an EXTERNAL and a
PERSONAL code, sealed by the same code vault (HMAC lookup key, AES-GCM ciphertext under the
configured keys, so lookups find them), and an IMPORT ledger row equal to its balance, so
``giftcards ledger verify`` holds. Worker processes generate and seal batches of cards; the
main process streams them into three COPYs at once (cards, codes, ledger), one connection each.
The well-known demo cards are not loaded.

For speed the three tables' secondary indexes, unique constraint and foreign keys are dropped
before the COPY and built again afterwards (then ``VACUUM ANALYZE``), which is why the database
must hold no cards: never point this at a database in use. Progress (rows/s, ETA) goes to stderr.

``--codes-file`` receives the PHYSICAL and PERSONAL codes of a sample of the cards, spread over
the whole load (``--sample``), as ``TYPE<TAB>CODE`` lines like ``demo-data --codes-file``.
``--history N`` (repeatable) adds one more card per N with N ledger rows (alternate credits
and debits of 0.01), for history benchmarks; their ids go to stdout as ``history N ID`` lines.

    GIFTCARDS_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python scripts/bulk_load.py --cards 1000000 --codes-file codes.tsv
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from sqlalchemy.engine import make_url

from app.config import load_settings
from app.domain.codes import ALPHABET, PERSONAL_CODE_LENGTH, CodeVault
from app.enums import CodeType
from app.ids import EPOCH_MS, LOW_BITS

BATCH = 10_000
ROWS_PER_CARD = 5  # ids per card: the card, three codes, one ledger row
TABLES = ("giftcards", "giftcard_codes", "giftcard_transactions")
CARD_COLUMNS = "id, member_id, currency, state, balance, created_by, created_at, updated_at"
CODE_COLUMNS = "id, giftcard_id, code_type, lookup_hash, lookup_key_id, ciphertext, key_id, last4, created_at"
LEDGER_COLUMNS = (
    "id, giftcard_id, trans_type, status, amount, balance_before, balance_after, source_id, "
    "created_by, created_at"
)
SHOWN_TYPES = (CodeType.PHYSICAL, CodeType.PERSONAL)  # what --codes-file receives
# Every byte to a code character (the alphabet has 32, so evenly).
_TO_ALPHABET = bytes((ALPHABET * (256 // len(ALPHABET))).encode())

_vault: CodeVault | None = None  # each worker's, set before the pool forks


@dataclass(frozen=True)
class Job:
    first: int  # the batch's first card number
    count: int
    base_id: int
    stamp: str  # created_at of every row, in COPY's text form
    sample_every: int  # a card whose number is a multiple of it goes to the codes file


@dataclass
class Chunk:
    cards: bytes
    codes: bytes
    ledger: bytes
    shown: list[str]  # codes-file lines


def pg_url(url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit(f"bulk_load: PostgreSQL only, not {parsed.get_backend_name()}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def hex_bytea(value: bytes) -> str:
    return "\\\\x" + value.hex()  # COPY's text form unescapes \\ to \


def random_codes(count: int, length: int) -> list[str]:
    text = os.urandom(count * length).translate(_TO_ALPHABET).decode()
    return [text[i : i + length] for i in range(0, len(text), length)]


def make_chunk(job: Job) -> Chunk:
    """A batch of cards, their sealed codes and IMPORT rows, as COPY text."""
    assert _vault is not None
    vault, stamp = _vault, job.stamp
    physical = random_codes(job.count, 15)
    external = random_codes(job.count, 15)
    personal = random_codes(job.count, PERSONAL_CODE_LENGTH)
    cards, codes, ledger, shown = [], [], [], []
    for offset in range(job.count):
        number = job.first + offset
        card_id = job.base_id + number * ROWS_PER_CARD
        balance = 1000 + number % 9000
        cards.append(f"{card_id}\tM{number:09d}\tUSD\tACTIVE\t{balance}\tdemo-data\t{stamp}\t{stamp}\n")
        values = (
            (CodeType.PHYSICAL, "P" + physical[offset]),
            (CodeType.EXTERNAL, "X" + external[offset]),
            (CodeType.PERSONAL, personal[offset]),
        )
        for index, (code_type, code) in enumerate(values, start=1):
            sealed = vault.seal(code, code_type)
            codes.append(
                f"{card_id + index}\t{card_id}\t{code_type.value}\t{hex_bytea(sealed.lookup_hash)}\t"
                f"{sealed.lookup_key_id}\t{hex_bytea(sealed.ciphertext)}\t{sealed.key_id}\t"
                f"{sealed.last4}\t{stamp}\n"
            )
            if code_type in SHOWN_TYPES and number % job.sample_every == 0:
                shown.append(f"{code_type.value}\t{code}\n")
        ledger.append(
            f"{card_id + 4}\t{card_id}\tIMPORT\tCOMPLETED\t{balance}\t0\t{balance}\tdemo-data\t"
            f"demo-data\t{stamp}\n"
        )
    return Chunk("".join(cards).encode(), "".join(codes).encode(), "".join(ledger).encode(), shown)


def first_id(now: datetime) -> int:
    """Ids above every id handed out so far (app/ids.py's layout, this millisecond, node 0), one
    after another; the servers' own ids of later milliseconds sort after them."""
    return (int(now.timestamp() * 1000) - EPOCH_MS + 1) << LOW_BITS


class Progress:
    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.started, self.shown = what, total, time.monotonic(), 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.shown < 2 and done < self.total:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-9)
        eta = (self.total - done) / rate if rate else 0.0
        print(
            f"bulk load: {self.what} {done:,}/{self.total:,} ({rate:,.0f}/s, ETA {eta:,.0f}s)",
            file=sys.stderr,
            flush=True,
        )


def secondary_ddl(connection: psycopg.Connection) -> tuple[list[str], list[str]]:
    """(drop, create) statements for the three tables' indexes and constraints but the primary keys."""
    constraints = connection.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') ORDER BY contype",
        [list(TABLES)],
    ).fetchall()
    indexes = connection.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [list(TABLES)],
    ).fetchall()
    drop = [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for table, name, _ in constraints]
    drop += [f"DROP INDEX {name}" for name, _ in indexes]
    create = [definition for _, definition in indexes]
    # Unique constraints (with their index) first, foreign keys last.
    create += [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}' for table, name, ddl in reversed(constraints)
    ]
    return drop, create


def jobs(cards: int, base_id: int, stamp: str, sample: int) -> Iterator[Job]:
    every = max(cards // max(sample, 1), 1)
    for first in range(0, cards, BATCH):
        yield Job(first, min(BATCH, cards - first), base_id, stamp, every)


def copy_cards(url: str, args: argparse.Namespace, base_id: int, stamp: str) -> None:
    statements = (
        f"COPY giftcards ({CARD_COLUMNS}) FROM STDIN",
        f"COPY giftcard_codes ({CODE_COLUMNS}) FROM STDIN",
        f"COPY giftcard_transactions ({LEDGER_COLUMNS}) FROM STDIN",
    )
    connections = [psycopg.connect(url) for _ in statements]
    progress = Progress("cards", args.cards)
    codes_out = open(args.codes_file, "w") if args.codes_file else None  # noqa: SIM115
    context = multiprocessing.get_context("fork")
    try:
        cursors = [c.cursor() for c in connections]
        for connection in connections:
            connection.execute("SET synchronous_commit = off")
        with (
            context.Pool(args.workers) as pool,
            cursors[0].copy(statements[0]) as cards,
            cursors[1].copy(statements[1]) as codes,
            cursors[2].copy(statements[2]) as ledger,
        ):
            done = 0
            for chunk in pool.imap(make_chunk, jobs(args.cards, base_id, stamp, args.sample)):
                cards.write(chunk.cards)
                codes.write(chunk.codes)
                ledger.write(chunk.ledger)
                if codes_out is not None:
                    codes_out.writelines(chunk.shown)
                done += chunk.cards.count(b"\n")
                progress(done)
        for connection in connections:
            connection.commit()
    finally:
        for connection in connections:
            connection.close()
        if codes_out is not None:
            codes_out.close()


def add_history_card(connection: psycopg.Connection, card_id: int, entries: int, stamp: str) -> None:
    """A card of balance 1000 whose ledger has ``entries`` rows: an IMPORT of 1000, then credits
    and debits of 1 by turns (a card with an odd number of those ends at 1001)."""
    balance, rows = (
        1000,
        [f"{card_id + 1}\t{card_id}\tIMPORT\tCOMPLETED\t1000\t0\t1000\tbench\tbench\t{stamp}\n"],
    )
    for index in range(1, entries):
        amount = 1 if index % 2 else -1
        before, balance = balance, balance + amount
        kind = "ADD" if amount > 0 else "USE"
        rows.append(
            f"{card_id + 1 + index}\t{card_id}\t{kind}\tCOMPLETED\t{amount}\t{before}\t{balance}\t"
            f"bench\tbench\t{stamp}\n"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO giftcards ({CARD_COLUMNS}) VALUES (%s, NULL, 'USD', 'ACTIVE', %s, 'bench', %s, %s)",
            (card_id, balance, stamp, stamp),
        )
        with cursor.copy(f"COPY giftcard_transactions ({LEDGER_COLUMNS}) FROM STDIN") as copy:
            copy.write("".join(rows).encode())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bulk_load.py", description=__doc__)
    parser.add_argument("--cards", type=int, required=True, help="random cards to load")
    parser.add_argument("--codes-file", help="write PHYSICAL and PERSONAL codes of a sample here")
    parser.add_argument("--sample", type=int, default=50_000, help="cards whose codes go to --codes-file")
    parser.add_argument("--history", type=int, action="append", default=[], metavar="N")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes that seal codes")
    return parser.parse_args()


def rebuild(url: str, create: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '1GB'")
        for statement in create:
            started = time.monotonic()
            connection.execute(statement)  # type: ignore[arg-type]
            print(f"bulk load: {statement[:90]} … {time.monotonic() - started:.1f}s", file=sys.stderr)
        for table in TABLES:
            started = time.monotonic()
            connection.execute(f"VACUUM (ANALYZE) {table}")  # type: ignore[arg-type]
            print(f"bulk load: VACUUM ANALYZE {table} {time.monotonic() - started:.1f}s", file=sys.stderr)


def main() -> int:
    global _vault
    args = parse_args()
    settings = load_settings(os.environ)
    url = pg_url(settings.database_url)
    _vault = CodeVault.from_settings(settings)
    now = datetime.now(UTC)
    stamp, base_id = now.isoformat(sep=" "), first_id(now)
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as connection:
        if connection.execute("SELECT EXISTS (SELECT 1 FROM giftcards)").fetchone() != (False,):
            raise SystemExit("bulk_load: the database already holds cards; load into an empty one")
        drop, create = secondary_ddl(connection)
        for statement in drop:
            connection.execute(statement)  # type: ignore[arg-type]
    try:
        copy_cards(url, args, base_id, stamp)
        next_id = base_id + args.cards * ROWS_PER_CARD
        with psycopg.connect(url) as connection:
            for entries in args.history:
                add_history_card(connection, next_id, entries, stamp)
                print(f"history {entries} {next_id}")
                next_id += entries + 1
    except BaseException:
        # The indexes, keys and constraints dropped above come back whatever the load left.
        print("bulk load: failed; building the dropped indexes and constraints again", file=sys.stderr)
        rebuild(url, create)
        raise
    loaded = time.monotonic() - started
    print(f"bulk load: {args.cards:,} cards copied in {loaded:.0f}s; building indexes", file=sys.stderr)
    rebuild(url, create)
    total = time.monotonic() - started
    print(f"bulk load: done in {total:.0f}s ({args.cards / total:,.0f} cards/s overall)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
