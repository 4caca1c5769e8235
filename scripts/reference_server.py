"""Reference server for the lookup benchmark: the same masked ``giftcard(code:)`` lookup, lean.

Plain ASGI, graphql-core over the checked-in ``schema.graphql`` with parsing and validation
cached on the query text, and one connection per worker process on the same database: stdlib
sqlite3 for an SQLite file, synchronous psycopg (autocommit) for PostgreSQL. It finds rows
with the same HMAC lookup key (from the same ``GIFTCARDS_*`` settings) and answers as the
``storefront`` role would: PHYSICAL and PERSONAL codes, PERSONAL masked, other types left out.
It does not verify tokens.

    python scripts/reference_server.py --port 8100 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.pyutils import AwaitableOrValue

from app.config import load_settings
from app.domain.codes import CodeVault

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

USABLE = ("PHYSICAL", "PERSONAL")  # the storefront role's code types
MASKED = frozenset({"PERSONAL"})  # shown as their last four characters to storefront
NONCE_AND_TAG = 28  # AES-GCM ciphertext = 12-byte nonce + plaintext + 16-byte tag
SHORTEST_PARTLY_MASKED = 12

# The card that owns the matching live code, with all of its live codes.
LOOKUP_SQL = f"""
SELECT c.id, c.member_id, c.balance, k.id, k.code_type, k.ciphertext, k.key_id, k.last4,
       k.expires_on
FROM giftcard_codes m
JOIN giftcards c ON c.id = m.giftcard_id
LEFT JOIN giftcard_codes k ON k.giftcard_id = c.id AND k.revoked_at IS NULL
WHERE m.lookup_hash = ? AND m.revoked_at IS NULL
  AND m.code_type IN ({", ".join(f"'{name}'" for name in USABLE)})
  AND (m.expires_on IS NULL OR m.expires_on >= date('now'))
ORDER BY c.id, k.id
"""
POSTGRES_LOOKUP_SQL = LOOKUP_SQL.replace("?", "%s").replace("date('now')", "CURRENT_DATE")


def mask(last4: str, length: int) -> str:
    if length < SHORTEST_PARTLY_MASKED:
        return "*" * length
    return "*" * (length - len(last4)) + last4


def connect(database_url: str) -> tuple[Any, str]:
    """A connection to the database of a ``GIFTCARDS_DATABASE_URL`` and the lookup in its dialect."""
    if database_url.startswith("postgresql"):
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(url, autocommit=True), POSTGRES_LOOKUP_SQL
    return sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None), LOOKUP_SQL


class Lookup:
    """Resolves ``giftcard(code:)`` on one connection (sqlite3 or psycopg)."""

    def __init__(self, database_url: str, vault: CodeVault) -> None:
        self.connection, self.sql = connect(database_url)
        self.vault = vault

    def giftcard(self, _info: Any, code: str | None = None, **_: Any) -> dict[str, Any]:
        if code is None:
            raise GraphQLError("giftcard: only lookups by code are served here")
        normalised = code.replace(" ", "").replace("-", "").upper()
        rows = self.connection.execute(self.sql, (self.vault.lookup_hashes(normalised)[0],)).fetchall()
        cards: dict[int, dict[str, Any]] = {}
        limited = False
        for card_id, member_id, balance, code_id, code_type, sealed, key_id, last4, expires in rows:
            card = cards.get(card_id)
            if card is None:
                whole, cents = divmod(balance, 100)  # the benchmark's cards are all USD
                card = cards[card_id] = {
                    "id": str(card_id),
                    "memberId": member_id,
                    "balance": f"{whole}.{cents:02d}",
                    "codes": [],
                }
            if code_id is None:
                continue
            if code_type not in USABLE:
                limited = True
                continue
            masked = code_type in MASKED
            if masked:
                limited = True
                shown = mask(last4, len(sealed) - NONCE_AND_TAG)
            else:
                shown = self.vault.open(sealed, key_id, code_type)
            card["codes"].append(
                {
                    "id": str(code_id),
                    "codeType": code_type,
                    "code": shown,
                    "expiresOn": expires.isoformat() if isinstance(expires, date) else expires,
                    "isMasked": masked,
                }
            )
        return {"limitedByPermission": limited, "results": list(cards.values())}


Answer = tuple[int, dict[str, Any]]  # an HTTP status and the JSON body


class CachedDocuments:
    """graphql-core over the checked-in schema with these root resolvers; each query text is parsed
    and validated once (the reference servers' whole GraphQL layer)."""

    loads: Callable[[bytes], Any] = staticmethod(json.loads)

    def __init__(self, root: dict[str, Any]) -> None:
        self.schema: GraphQLSchema = build_schema((REPO / "schema.graphql").read_text())
        self.root = root
        self.document = lru_cache(maxsize=512)(self._document)

    def _document(self, query: str) -> tuple[DocumentNode | None, list[GraphQLError]]:
        try:
            document = parse(query)
        except GraphQLError as error:
            return None, [error]
        return document, validate(self.schema, document)

    def run(self, body: bytes) -> Answer | AwaitableOrValue[ExecutionResult]:
        """The execution of a POST body's document, or the answer refusing the body."""
        try:
            payload = self.loads(body)
            query, variables = payload["query"], payload.get("variables")
        except (ValueError, KeyError, TypeError):
            return 400, {"errors": [{"message": "expected a JSON body with a query"}]}
        document, errors = self.document(query)
        if document is None or errors:
            return 200, {"errors": [error.formatted for error in errors]}
        return execute(self.schema, document, root_value=self.root, variable_values=variables)


def answered(result: ExecutionResult) -> Answer:
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [error.formatted for error in result.errors]
    return 200, out


class ReferenceApp(CachedDocuments):
    """POST /graphql with a JSON body; every other request gets 404."""

    def __init__(self) -> None:
        settings = load_settings(os.environ)
        super().__init__(
            {"giftcard": Lookup(settings.database_url, CodeVault.from_settings(settings)).giftcard}
        )

    def answer(self, body: bytes) -> Answer:
        result = self.run(body)
        return result if isinstance(result, tuple) else answered(result)  # type: ignore[arg-type]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await request_body(receive)
        if scope["method"] == "POST" and scope["path"] == "/graphql":
            status, answer = self.answer(body)
        else:
            status, answer = NOT_FOUND
        await respond(send, status, json.dumps(answer).encode())


NOT_FOUND: Answer = (404, {"errors": [{"message": "not found"}]})


async def request_body(receive: Any) -> bytes:
    """The whole body of an ASGI HTTP request."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def respond(send: Any, status: int, data: bytes) -> None:
    """An ASGI response of JSON ``data``."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def listen(host: str, port: int) -> socket.socket:
    """The shared listener, marked TCP and with TCP_NODELAY (which accepted sockets inherit).

    uvicorn's own listener for ``--workers N`` has ``proto`` 0, so asyncio leaves Nagle on and a
    response sent in two writes waits for the client's delayed ACK (~40 ms; uvicorn issue #3149).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(factory: str, host: str, port: int, workers: int) -> None:
    """Run the app ``factory`` ("module:callable", the module importable by name from this
    directory, as it is in the workers) with ``workers`` worker processes on one socket."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        factory, factory=True, host=host, port=port, workers=workers, log_level="warning", access_log=False
    )
    Multiprocess(config, sockets=[listen(host, port)]).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    serve("reference_server:ReferenceApp", args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
