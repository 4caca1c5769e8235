"""Reference server for the transaction benchmark: the same ``giftcardTransAdd`` debit, lean.

Plain ASGI, graphql-core over the checked-in ``schema.graphql`` with parsing and validation cached
on the query text, on the same database as ours. A debit by code takes the amount off the card only
if the balance less the card's open debit holds covers it, and writes the ledger row:

- PostgreSQL: one statement, a CTE (the code, its card's holds, ``UPDATE giftcards … RETURNING``,
  ``INSERT INTO giftcard_transactions … SELECT … RETURNING``) on psycopg's async pool in autocommit,
  so one round trip per debit (prepared by psycopg after a few uses);
- SQLite: stdlib sqlite3, one connection per worker process (WAL, as ours): the code read, then
  ``BEGIN IMMEDIATE``, the holds, ``UPDATE … RETURNING`` and ``INSERT``, ``COMMIT``.

It finds the code by the same HMAC lookup key as ours (the current one, from the same
``GIFTCARDS_*`` settings). When a PIN is sent it first reads the code's keyed PIN and checks it with
our PinKeys, and the debit then requires the code to hold the value it checked (so a PIN debit is
two statements on PostgreSQL). Its ledger rows hold what ours writes for a USE (COMPLETED, balance
before and after, code type and id, settled_at), with ids from app.ids after claiming a node as our
server does, and ``created_by`` ``reference``.

Left out on purpose: token verification, attempt budgets, counting wrong PINs, audit events,
idempotency keys, stores, programs' rules and the refusal floor. It serves only USE debits by code
in the server's default currency; any refusal is one uniform error.

    python scripts/reference_tx_server.py --port 8200 --workers 2
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from inspect import isawaitable
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError
from reference_server import NOT_FOUND, Answer, CachedDocuments, answered, request_body, respond, serve
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from app.config import Settings, load_settings
from app.db import claim_id_node
from app.domain.codes import CodeVault, normalise
from app.domain.money import format_amount, parse_amount
from app.domain.pins import PinKeys, StoredPin
from app.errors import GiftCardError
from app.ids import new_id

REPO = Path(__file__).resolve().parent.parent
SUBJECT = "reference"  # created_by of its ledger rows
SERVED = frozenset({"transType", "amount", "codeType", "code", "pin"})  # what a served debit may give
REFUSED = "no usable gift card matches this code and PIN"

# The live, unexpired code with this lookup hash, unless a run of wrong PINs locked it.
CODE_PG = """
SELECT id, pin_hash, pin_key_ids FROM giftcard_codes
WHERE lookup_hash = %(hash)s AND code_type = %(code_type)s AND revoked_at IS NULL
  AND (expires_on IS NULL OR expires_on >= %(today)s)
  AND (pin_locked_until IS NULL OR pin_locked_until <= %(now)s)
"""
# The debit: the code (holding the PIN value checked, or none), its card's open debit holds, the
# conditional balance update and the ledger row, in one statement.
DEBIT_PG = """
WITH code AS (
  SELECT id, giftcard_id FROM giftcard_codes
  WHERE lookup_hash = %(hash)s AND code_type = %(code_type)s AND revoked_at IS NULL
    AND (expires_on IS NULL OR expires_on >= %(today)s)
    AND pin_hash IS NOT DISTINCT FROM %(pin_hash)s
), held AS (
  SELECT coalesce(sum(-amount), 0) AS amount FROM giftcard_transactions
  WHERE giftcard_id = (SELECT giftcard_id FROM code) AND status = 'AUTHORIZED' AND amount < 0
    AND hold_expires_at > %(now)s
), card AS (
  UPDATE giftcards c SET balance = c.balance + %(amount)s, updated_at = %(now)s
  FROM code, held
  WHERE c.id = code.giftcard_id AND c.currency = %(currency)s AND c.state IN ('PENDING', 'ACTIVE')
    AND (c.usable_from IS NULL OR c.usable_from <= %(now)s)
    AND (c.expires_at IS NULL OR c.expires_at > %(now)s)
    AND c.balance - held.amount >= -%(amount)s
  RETURNING c.id, c.store_id, c.balance, code.id AS code_id, held.amount AS held
), entry AS (
  INSERT INTO giftcard_transactions (id, giftcard_id, store_id, trans_type, status, amount,
    balance_before, balance_after, partial, code_type, code_id, created_by, created_at, settled_at)
  SELECT %(id)s, id, store_id, 'USE', 'COMPLETED', %(amount)s, balance - %(amount)s, balance, false,
    %(code_type)s, code_id, %(subject)s, %(now)s, %(now)s
  FROM card
  RETURNING id
)
SELECT entry.id, card.id, card.balance, card.held FROM entry, card
"""
CODE_SQLITE = """
SELECT id, pin_hash, pin_key_ids, giftcard_id FROM giftcard_codes
WHERE lookup_hash = :hash AND code_type = :code_type AND revoked_at IS NULL
  AND (expires_on IS NULL OR expires_on >= :today)
  AND (pin_locked_until IS NULL OR pin_locked_until <= :now)
"""
HELD_SQLITE = """
SELECT coalesce(sum(-amount), 0) FROM giftcard_transactions
WHERE giftcard_id = :card AND status = 'AUTHORIZED' AND amount < 0 AND hold_expires_at > :now
"""
UPDATE_SQLITE = """
UPDATE giftcards SET balance = balance + :amount, updated_at = :now
WHERE id = :card AND currency = :currency AND state IN ('PENDING', 'ACTIVE')
  AND (usable_from IS NULL OR usable_from <= :now) AND (expires_at IS NULL OR expires_at > :now)
  AND balance - :held >= -:amount
  AND EXISTS (SELECT 1 FROM giftcard_codes WHERE id = :code AND revoked_at IS NULL AND pin_hash IS :pin_hash)
RETURNING store_id, balance
"""
INSERT_SQLITE = """
INSERT INTO giftcard_transactions (id, giftcard_id, store_id, trans_type, status, amount,
  balance_before, balance_after, partial, code_type, code_id, created_by, created_at, settled_at)
VALUES (:id, :card, :store, 'USE', 'COMPLETED', :amount, :balance - :amount, :balance, 0,
  :code_type, :code, :subject, :now, :now)
"""
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000")


@dataclass(frozen=True, slots=True)
class Debit:
    """One debit as asked: the code's lookup hash and type, minor units (negative), the PIN."""

    lookup_hash: bytes
    code_type: str
    amount: int
    pin: str | None

    def params(self, currency: str, now: datetime) -> dict[str, Any]:
        return {
            "hash": self.lookup_hash,
            "code_type": self.code_type,
            "amount": self.amount,
            "currency": currency,
            "now": now,
            "today": now.date(),
            "subject": SUBJECT,
            "id": new_id(),
        }


class Debits:
    """What both databases share: reading the request, checking a PIN, shaping the answer."""

    def __init__(self, settings: Settings) -> None:
        self.vault = CodeVault.from_settings(settings)
        self.pins = PinKeys.from_settings(settings)
        self.currency = settings.default_currency

    def debit(self, trans: dict[str, Any]) -> Debit:
        code, code_type = trans.get("code"), trans.get("codeType")
        given = {name for name, value in trans.items() if value is not None and value is not False}
        if trans.get("transType") != "USE" or code is None or code_type is None or given - SERVED:
            raise GraphQLError("only USE debits by code (with a PIN or not) are served here")
        try:
            amount = parse_amount(trans["amount"], self.currency)
        except GiftCardError as exc:
            raise GraphQLError(str(exc)) from None
        if amount >= 0:
            raise GraphQLError("amount: a USE is negative")
        return Debit(self.vault.lookup_hashes(normalise(code))[0], code_type, amount, trans.get("pin"))

    def pin_value(self, debit: Debit, row: tuple[Any, ...] | None) -> str | None:
        """The code row's stored PIN value when ``debit`` may spend it (its PIN right, or no PIN
        on either side); a refusal otherwise."""
        if row is None:
            raise GraphQLError(REFUSED)
        code_id, pin_hash, pin_key_ids = row[:3]
        if pin_hash is None and debit.pin is None:
            return None
        if pin_hash is None or debit.pin is None:
            raise GraphQLError(REFUSED)
        try:
            right = self.pins.verify(code_id, debit.pin, StoredPin(pin_hash, pin_key_ids)).ok
        except GiftCardError:  # an argon2 PIN without its pepper
            right = False
        if not right:
            raise GraphQLError(REFUSED)
        return str(pin_hash)

    def answer(self, row: tuple[Any, ...] | None, amount: int) -> dict[str, Any]:
        """``giftcardTransAdd``'s answer from (entry id, card id, balance after, held)."""
        if row is None:
            raise GraphQLError(REFUSED)
        entry_id, card_id, balance, held = row

        def money(minor: int) -> str:
            return format_amount(int(minor), self.currency)

        return {
            "id": str(entry_id),
            "giftcardId": str(card_id),
            "transType": "USE",
            "status": "COMPLETED",
            "currency": self.currency,
            "amount": money(amount),
            "balance": money(balance),
            "availableBalance": money(balance - held),
            "balanceBefore": money(balance - amount),
            "balanceAfter": money(balance),
        }


class PostgresDebits(Debits):
    """Debits on psycopg's async pool, one statement each (two with a PIN)."""

    def __init__(self, settings: Settings, pool_size: int) -> None:
        from psycopg_pool import AsyncConnectionPool

        super().__init__(settings)
        conninfo = make_url(settings.database_url).set(drivername="postgresql")
        self.pool = AsyncConnectionPool(
            conninfo.render_as_string(hide_password=False),
            min_size=pool_size,
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=False,
        )

    async def giftcard_trans_add(self, _info: Any, trans: dict[str, Any], **_: Any) -> dict[str, Any]:
        debit = self.debit(trans)
        params = debit.params(self.currency, datetime.now(UTC))
        async with self.pool.connection() as connection:
            params["pin_hash"] = None
            if debit.pin is not None:
                found = await (await connection.execute(CODE_PG, params)).fetchone()
                params["pin_hash"] = self.pin_value(debit, found)
            row = await (await connection.execute(DEBIT_PG, params)).fetchone()
        return self.answer(row, debit.amount)


class SqliteDebits(Debits):
    """Debits on one sqlite3 connection: the code read, then the write transaction."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        database = make_url(settings.database_url).database or ""
        self.connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        for pragma in SQLITE_PRAGMAS:
            self.connection.execute(f"PRAGMA {pragma}")

    def giftcard_trans_add(self, _info: Any, trans: dict[str, Any], **_: Any) -> dict[str, Any]:
        debit = self.debit(trans)
        now = datetime.now(UTC)
        params = debit.params(self.currency, now)
        # SQLAlchemy keeps points in time on SQLite as naive UTC text, dates as ISO dates.
        params.update(now=now.strftime("%Y-%m-%d %H:%M:%S.%f"), today=now.date().isoformat())
        db = self.connection
        found = db.execute(CODE_SQLITE, params).fetchone()
        params.update(pin_hash=self.pin_value(debit, found), code=found[0], card=found[3])  # type: ignore[index]
        db.execute("BEGIN IMMEDIATE")
        try:
            params["held"] = db.execute(HELD_SQLITE, params).fetchone()[0]  # type: ignore[index]
            changed = db.execute(UPDATE_SQLITE, params).fetchone()
            if changed is not None:
                params.update(store=changed[0], balance=changed[1])
                db.execute(INSERT_SQLITE, params)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        row = None if changed is None else (params["id"], params["card"], changed[1], params["held"])
        return self.answer(row, debit.amount)


def claim_node(settings: Settings) -> None:
    """A node number for this process's ids, claimed as our server claims one."""
    engine = create_engine(settings.database_url)
    try:
        claim_id_node(engine)
    finally:
        engine.dispose()


class TxReferenceApp(CachedDocuments):
    """POST /graphql with a JSON body; every other request gets 404."""

    loads = staticmethod(orjson.loads)

    def __init__(self, settings: Settings | None = None, pool_size: int | None = None) -> None:
        """With no arguments (as uvicorn's factory), settings from the environment."""
        settings = settings or load_settings(os.environ)
        claim_node(settings)
        pool_size = pool_size or int(os.environ.get("REFERENCE_POOL_SIZE", "8"))
        backend = (
            PostgresDebits(settings, pool_size)
            if make_url(settings.database_url).get_backend_name() == "postgresql"
            else SqliteDebits(settings)
        )
        self.pool = getattr(backend, "pool", None)
        super().__init__({"giftcardTransAdd": backend.giftcard_trans_add})

    async def answer(self, body: bytes) -> Answer:
        result = self.run(body)
        if isinstance(result, tuple):
            return result
        return answered(await result if isawaitable(result) else result)

    async def lifespan(self, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "lifespan.shutdown":
            if self.pool is not None:
                await self.pool.open(wait=True)
            await send({"type": "lifespan.startup.complete"})
        if self.pool is not None:
            await self.pool.close()
        await send({"type": "lifespan.shutdown.complete"})

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        body = await request_body(receive)
        if scope["method"] == "POST" and scope["path"] == "/graphql":
            status, answer = await self.answer(body)
        else:
            status, answer = NOT_FOUND
        await respond(send, status, orjson.dumps(answer))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=8, help="PostgreSQL connections per worker")
    args = parser.parse_args()
    os.environ["REFERENCE_POOL_SIZE"] = str(args.pool_size)  # the workers' factory reads it
    serve("reference_tx_server:TxReferenceApp", args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
