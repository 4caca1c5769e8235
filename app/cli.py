"""The ``giftcards`` command: serve, mint tokens, migrate, load demo data, export the schema,
register clients of the token endpoint."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings, load_settings
from app.errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from app.domain.codes import CodeVault
    from app.domain.keys import KeyStatus
    from app.domain.pins import PinKeys

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 1h or 7d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 10_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of cards from 0 to 10,000,000")
    return int(text)


def _settings() -> Settings:
    return load_settings(os.environ)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app import db
    from app.server import uvicorn_options

    settings = _settings()
    engine = db.create_db_engine(settings)
    try:
        db.check_schema(engine)
    finally:
        engine.dispose()
    # Each worker divides budgets by it while Redis is unreachable; an operator's own figure wins.
    os.environ.setdefault("GIFTCARDS_WORKERS", str(args.workers))
    print(
        f"giftcards: serving on http://{args.host}:{args.port}/graphql "
        f"({settings.env}, {args.workers} worker(s))",
        file=sys.stderr,
    )
    uvicorn.run(
        "app.http:app_from_environ",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
        access_log=args.access_log,
        lifespan="on",
        **uvicorn_options(settings),
    )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from app.auth.tokens import issue_token
    from app.policy_file import load_policy

    settings = _settings()
    policy = load_policy(settings.permissions_file)
    print(
        issue_token(
            settings,
            policy,
            args.sub,
            permissions=args.permission or [],
            roles=args.role or [],
            ttl_seconds=args.ttl,
        )
    )
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from app import db

    engine = db.create_db_engine(_settings())
    try:
        if args.db_command == "upgrade":
            db.upgrade(engine)
            print(f"database schema is at revision {db.current_revision(engine)}")
        else:
            current, head = db.current_revision(engine), db.head_revision()
            print(f"current: {current or 'empty'}; code expects: {head}")
            return 0 if current == head else 1
    finally:
        engine.dispose()
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from app import demo
    from app.db import check_schema
    from app.services import build_services

    services = build_services(_settings())
    try:
        check_schema(services.engine)
        existing = demo.card_count(services)
        if existing and not args.cards:
            print(f"the database already holds {existing} cards; nothing loaded")
            return 0
        codes_out = args.codes_file.open("w") if args.codes_file else None
        try:
            # The well-known cards go only into an empty database; random ones whenever asked.
            count = 0 if existing else demo.load(services, list(demo.WELL_KNOWN), codes_out=codes_out)
            if args.cards:
                count += demo.load(
                    services,
                    demo.random_cards(args.cards),
                    codes_out=codes_out,
                    progress=demo.print_progress(args.cards),
                )
        finally:
            if codes_out:
                codes_out.close()
        print(f"loaded {count} demo cards")
    finally:
        services.engine.dispose()
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from app import db
    from app.store import ledger

    engine = db.create_db_engine(_settings())
    try:
        db.check_schema(engine)
        checked, differences = ledger.verify(engine, datetime.now(UTC))
    finally:
        engine.dispose()
    for diff in differences:
        print(
            f"card {diff.giftcard_id}: stored balance {diff.stored_balance}, ledger says "
            f"{diff.ledger_balance}, open holds {diff.held} (minor units)"
        )
    print(f"ledger verify: {checked} cards checked, {len(differences)} differences")
    return 1 if differences else 0


def _batch_size(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a batch size from 1 to 10,000")
    return int(text)


def cmd_keys(args: argparse.Namespace) -> int:
    from app import db
    from app.domain import keys
    from app.errors import ConflictError

    settings = _settings()
    engine = db.create_db_engine(settings)
    try:
        db.check_schema(engine)
        vault, pins = _keyrings(settings)
        status = keys.key_status(engine, vault, pins)
        if args.keys_command == "status":
            return _print_key_status(status)
        if status.stale == 0 and status.stale_pins == 0:
            # Set in the environment, a keyring is the operator's to rotate: never generated here.
            if settings.keyrings_from_environment:
                _print_how_to_rotate(settings, vault, pins)
                return 0
            if not _add_keys_to_state_file(settings):
                return 1
            vault, pins = _keyrings(_settings())
        _rotate_codes_and_pins(engine, vault, pins, args.batch_size)
        _print_removable_keys(engine, settings, vault, pins)
    except ConflictError as exc:
        print(f"giftcards: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _keyrings(settings: Settings) -> tuple[CodeVault, PinKeys]:
    from app.domain.codes import CodeVault
    from app.domain.pins import PinKeys

    return CodeVault.from_settings(settings), PinKeys.from_settings(settings)


def _print_how_to_rotate(settings: Settings, vault: CodeVault, pins: PinKeys) -> None:
    """Every row is under the current keys, which the operator sets: say how to give new ones."""
    print(
        f"every code row is under the current keys (encryption {vault.active_key_id}, "
        f"lookup {vault.lookup_key_id}, PIN {pins.current_key_id}). To rotate, in two "
        "steps so that no server meets a key it does not know: first add a new key, "
        "marked staged ('+NEWID:NEWKEY'), to GIFTCARDS_CODE_ENCRYPTION_KEYS, "
        "GIFTCARDS_CODE_LOOKUP_KEYS and GIFTCARDS_PIN_KEYS and restart every server; then "
        "put a new key first in GIFTCARDS_CODE_ENCRYPTION_KEYS and GIFTCARDS_CODE_LOOKUP_KEYS, "
        "and in GIFTCARDS_PIN_KEYS, without the '+', keeping the old ones after them, "
        "restart every server, then run `giftcards keys rotate` again."
    )
    if settings.code_lookup_key is not None:
        print(
            "GIFTCARDS_CODE_LOOKUP_KEY=KEY is the keyring GIFTCARDS_CODE_LOOKUP_KEYS=lk1:KEY: "
            "set GIFTCARDS_CODE_LOOKUP_KEYS=NEWID:NEWKEY,lk1:KEY instead of it."
        )


def _add_keys_to_state_file(settings: Settings) -> bool:
    """New keys first in the state file's keyrings; False (said on stderr) while a server runs on them."""
    from app.state_file import STATE_FILE, add_development_keys, server_running

    if server_running(settings.state_dir):
        # Its keys would change under it: lookups would miss and a code could be issued twice.
        print(
            f"giftcards: a server is running on the keys in {settings.state_dir / STATE_FILE}; "
            "stop it, run `giftcards keys rotate`, then start it again",
            file=sys.stderr,
        )
        return False
    encryption_id, lookup_id, pin_id = add_development_keys(settings.state_dir)
    print(
        f"giftcards: added encryption key {encryption_id}, lookup key {lookup_id} and PIN key "
        f"{pin_id} first in {settings.state_dir / STATE_FILE}; restart running servers so that "
        "they know them",
        file=sys.stderr,
    )
    return True


def _rotate_codes_and_pins(engine: Engine, vault: CodeVault, pins: PinKeys, batch_size: int) -> None:
    """Every code row to the current encryption and lookup keys, then every keyed PIN to its key."""
    from app.domain import keys

    progress = _KeyProgress()
    try:
        moved = keys.rotate(engine, vault, batch_size=batch_size, progress=progress)
    finally:
        progress.finish()
    print(
        f"keys rotate: {moved} rows moved; every code row is under encryption key "
        f"{vault.active_key_id} and lookup key {vault.lookup_key_id}"
    )
    progress = _KeyProgress("PINs")
    try:
        wrapped = keys.rotate_pins(engine, pins, batch_size=batch_size, progress=progress)
    finally:
        progress.finish()
    print(f"keys rotate: {wrapped} PINs wrapped; every keyed PIN is under PIN key {pins.current_key_id}")


def _print_removable_keys(engine: Engine, settings: Settings, vault: CodeVault, pins: PinKeys) -> None:
    """The keys no row uses any more, and the keyring each may be removed from."""
    from app.domain import keys
    from app.state_file import STATE_FILE

    for use in keys.key_status(engine, vault, pins).removable():
        ring = (
            keys.RING_SETTINGS[use.ring]
            if settings.keyrings_from_environment
            else settings.state_dir / STATE_FILE
        )
        print(f"{use.ring} key {use.key_id} is no longer used: it may be removed from {ring}")


class _KeyProgress:
    """Rows moved, on stderr: one line redrawn on a terminal, else a line per percent at most."""

    def __init__(self, unit: str = "rows") -> None:
        self._unit = unit
        self._on_terminal = sys.stderr.isatty()
        self._last: int | None = None

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent == self._last and not self._on_terminal:
            return
        start = "" if self._last is None else "\r" if self._on_terminal else "\n"
        self._last = percent
        sys.stderr.write(f"{start}keys rotate: {done}/{total} {self._unit} ({percent}%)")
        sys.stderr.flush()

    def finish(self) -> None:
        if self._last is not None:
            sys.stderr.write("\n")


def _print_key_status(status: KeyStatus) -> int:
    from app.domain import keys

    for ring in (keys.ENCRYPTION, keys.LOOKUP, keys.PIN):
        print(f"{ring} keys ({keys.RING_SETTINGS[ring]}, current first):")
        for use in status.keys:
            if use.ring != ring:
                continue
            state = (
                "current"
                if use.current
                else "staged"
                if use.staged
                else "old"
                if use.configured
                else "NOT IN RING"
            )
            rows = " ".join(f"{table}={count}" for table, count in sorted(use.rows.items())) or "no rows"
            note = "  (may be removed)" if use in status.removable() else ""
            print(f"  {use.key_id:<12} {state:<12} {rows}{note}")
    print(f"code rows to rotate: {status.stale}" + (" (run `giftcards keys rotate`)" if status.stale else ""))
    rotate_hint = " (run `giftcards keys rotate`)" if status.stale_pins else ""
    print(f"PINs to rotate: {status.stale_pins}{rotate_hint}")
    print(
        f"PINs still argon2 (replaced at their next right PIN; keep GIFTCARDS_PIN_PEPPER until 0): "
        f"{status.argon2_pins}"
    )
    try:
        keys.check_keys_present(status)
    except ConfigurationError as exc:
        print(f"giftcards: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_export_schema(args: argparse.Namespace) -> int:
    from app.graphql.schema import build_schema

    text = build_schema().as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    from app.auth import clients

    path = _settings().permissions_file
    if args.client_command == "add":
        added = clients.add_client(path, args.name, args.role, args.description)
        # The one place a client secret is ever shown; only its hash is kept.
        print(f"client_id: {added.id}")
        print(f"client_secret: {added.secret}")
        print(
            f"giftcards: client {added.id} ({', '.join(added.roles)}) added to {path}. The secret "
            "is shown only this once: store it now. Restart the server to load the client.",
            file=sys.stderr,
        )
    elif args.client_command == "remove":
        removed = clients.remove_client(path, args.name)
        print(
            f"giftcards: client {removed.id} removed from {path}; restart the server to drop it",
            file=sys.stderr,
        )
    else:
        for client in clients.list_clients(path):
            print(f"{client.id}\t{' '.join(client.roles)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="giftcards", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)

    token = commands.add_parser("token", help="print a signed token the server accepts")
    token.add_argument("--sub", required=True, help="subject: who the token is for")
    token.add_argument("--role", action="append", help="a role from permissions.yaml (repeatable)")
    token.add_argument("--permission", action="append", help="a permission name (repeatable)")
    token.add_argument("--ttl", type=parse_duration, default=3600, help="lifetime, e.g. 15m, 1h, 7d")
    token.set_defaults(func=cmd_token)

    database = commands.add_parser("db", help="database schema (Alembic migrations)")
    database.add_argument("db_command", choices=["upgrade", "current"])
    database.set_defaults(func=cmd_db)

    demo = commands.add_parser(
        "demo-data", help="load the demo cards into an empty database (and optionally many more)"
    )
    demo.add_argument("--cards", type=_count, default=0, help="also load this many random cards")
    demo.add_argument("--codes-file", type=Path, help="write the generated codes here (benchmarks)")
    demo.set_defaults(func=cmd_demo_data)

    ledger = commands.add_parser("ledger", help="check the ledger")
    ledger.add_argument(
        "ledger_command",
        choices=["verify"],
        help="recompute every balance from the ledger; exit 1 on any difference",
    )
    ledger.set_defaults(func=cmd_ledger)

    key_commands = commands.add_parser("keys", help="code keys: rows per key id; rotate to new keys")
    key_commands.add_argument(
        "keys_command",
        choices=["status", "rotate"],
        help="status: rows per key id; rotate: move every code row to the current keys (in "
        "development, first add new keys when every row is already current)",
    )
    key_commands.add_argument(
        "--batch-size", type=_batch_size, default=500, help="rows re-sealed per transaction (rotate)"
    )
    key_commands.set_defaults(func=cmd_keys)

    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", default="-", help="file to write, - for standard output")
    export.set_defaults(func=cmd_export_schema)

    client = commands.add_parser("client", help="clients of the token endpoint (in permissions.yaml)")
    client_commands = client.add_subparsers(dest="client_command", required=True)
    client_add = client_commands.add_parser("add", help="register a client; prints its new secret once")
    client_add.add_argument("name", help="client id: letters, digits, '.', '_', '-' (at most 64)")
    client_add.add_argument(
        "--role", action="append", required=True, help="a role from permissions.yaml (repeatable)"
    )
    client_add.add_argument("--description", default="", help="a note kept with the client")
    client_commands.add_parser("list", help="print each client's id and roles (never secrets)")
    client_remove = client_commands.add_parser("remove", help="unregister a client")
    client_remove.add_argument("name")
    client.set_defaults(func=cmd_client)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigurationError as exc:
        print(f"giftcards: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
