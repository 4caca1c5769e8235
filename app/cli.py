"""The ``giftcards`` command: serve, mint tokens, migrate, load demo data, export the schema,
register clients of the token endpoint, add and list stores."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from app.cli_args import (
    SQLITE_MULTIPROCESS_HELP,
    WORKERS_HELP,
    Parser,
    card_count,
    describe_duration,
    parse_duration,
    port_number,
    program_version,
    worker_count,
)
from app.cli_keys import add_keys_command
from app.cli_stores import add_store_command, add_store_option, add_token_store_options, token_stores
from app.config import Settings, load_settings
from app.errors import ConfigurationError
from app.logs import configure_logging, json_logging
from app.state_file import STATE_FILE

log = logging.getLogger("app.cli")


def _settings(*, create_state_file: bool = True) -> Settings:
    """This process's settings; its log lines (and Alembic's) take their level and format from them."""
    settings = load_settings(os.environ, create_state_file=create_state_file)
    configure_logging(settings)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app import db
    from app.cpu_pinning import cpu_slots
    from app.server import metrics_directory, served_workers, uvicorn_options

    settings = _settings()
    engine = db.create_db_engine(settings)
    try:
        db.check_schema(engine)
    finally:
        engine.dispose()
    workers, why = served_workers(settings, args.workers, args.sqlite_multiprocess)
    if why:
        log.warning("%s", why)
    # Each worker divides budgets by it while Redis is unreachable; an operator's own figure wins.
    os.environ.setdefault("GIFTCARDS_WORKERS", str(workers))
    log.info(
        "serving on http://%s:%d/graphql (%s, %d worker(s))", args.host, args.port, settings.env, workers
    )
    with metrics_directory(os.environ, workers), cpu_slots(os.environ, workers, settings.pin_workers) as why:
        if why:
            log.info("workers not pinned to CPUs: %s", why)
        uvicorn.run(
            "app.http:app_from_environ",
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            log_level=settings.log_level,
            # The app logs one line per request (app.logs) in place of uvicorn's access line, and its
            # logging configuration stands for uvicorn's.
            access_log=False,
            log_config=None,
            lifespan="on",
            **uvicorn_options(settings),
        )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from app.auth.tokens import issue_token
    from app.policy_file import load_policy

    # No state file made in whatever folder this runs in (only in one named by GIFTCARDS_STATE_DIR):
    # a secret generated outside the server's folder signs tokens that server refuses.
    settings = _settings(create_state_file=bool(os.environ.get("GIFTCARDS_STATE_DIR")))
    if settings.uses_hmac_tokens and settings.jwt_secret is None:
        raise ConfigurationError(
            f"no development state file at {(settings.state_dir / STATE_FILE).absolute()}, so there is "
            "no secret the server shares: run `giftcards token` in the folder the server runs in, or set "
            "GIFTCARDS_STATE_DIR to the server's state directory, or GIFTCARDS_JWT_SECRET to its secret"
        )
    if args.ttl > settings.token_max_ttl_seconds:
        raise ConfigurationError(
            f"--ttl {describe_duration(args.ttl)} is too long: at most "
            f"{describe_duration(settings.token_max_ttl_seconds)} (GIFTCARDS_TOKEN_MAX_TTL_SECONDS)"
        )
    policy = load_policy(settings.permissions_file)
    claims = {"permissions": args.permission or (), "roles": args.role or ()}
    stores = token_stores(args, settings)
    print(issue_token(settings, policy, args.sub, ttl_seconds=args.ttl, stores=stores, **claims))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from app import db

    engine = db.create_db_engine(_settings())
    try:
        if args.db_command == "upgrade":
            db.upgrade(engine)
            log.info("database schema is at revision %s", db.current_revision(engine))
            return 0
        current, head = db.current_revision(engine), db.head_revision()
        print(f"current: {current or 'empty'}; code expects: {head}")
        return 0 if current == head else 1
    finally:
        engine.dispose()


def cmd_demo_data(args: argparse.Namespace) -> int:
    from app import demo
    from app.db import check_schema, claim_id_node
    from app.services import build_services

    services = build_services(_settings())
    try:
        check_schema(services.engine)
        claim_id_node(services.engine)
        existing = demo.card_count(services)
        if existing and not args.cards:
            print(f"the database already holds {existing} cards; nothing loaded")
            return 0
        with args.codes_file.open("w") if args.codes_file else nullcontext() as codes_out:
            # The well-known cards go only into an empty database; random ones whenever asked.
            count = 0 if existing else demo.load(services, demo.WELL_KNOWN, codes_out=codes_out)
            if args.cards:
                cards, progress = demo.random_cards(args.cards), demo.print_progress(args.cards)
                count += demo.load(services, cards, codes_out=codes_out, progress=progress)
        print(f"loaded {count} demo cards")
    finally:
        services.engine.dispose()
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from app.cli_ledger import verify_ledger

    return verify_ledger(_settings())


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
    from app.policy_file import load_policy

    path = _settings().permissions_file
    if args.client_command == "add":
        added = clients.add_client(path, args.name, args.role, args.description, args.store)
        # The one place a client secret is ever shown; only its hash is kept.
        print(f"client_id: {added.id}\nclient_secret: {added.secret}")
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
        for client in load_policy(path).clients.values():
            stores = "" if client.stores is None else f"\tstores: {' '.join(client.stores) or '(none)'}"
            print(f"{client.id}\t{' '.join(client.roles)}{stores}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="giftcards", description=__doc__)
    parser.add_argument("--version", action="version", version=program_version(), help="print the version")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=port_number, default=8000, help="port to listen on")
    serve.add_argument("--workers", type=worker_count, default=1, help=WORKERS_HELP)
    serve.add_argument("--sqlite-multiprocess", action="store_true", help=SQLITE_MULTIPROCESS_HELP)
    serve.set_defaults(func=cmd_serve)

    token = commands.add_parser("token", help="print a signed token the server accepts")
    token.add_argument("--sub", required=True, help="subject: who the token is for")
    token.add_argument("--role", action="append", help="a role from permissions.yaml (repeatable)")
    token.add_argument("--permission", action="append", help="a permission name (repeatable)")
    token.add_argument(
        "--ttl",
        type=parse_duration,
        default="1h",
        help="lifetime: seconds, or 90s, 15m, 8h, 7d; at most GIFTCARDS_TOKEN_MAX_TTL_SECONDS (30 days)",
    )
    add_token_store_options(token)
    token.set_defaults(func=cmd_token)

    _add_database_commands(commands)
    add_keys_command(commands)

    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", default="-", help="file to write, - for standard output")
    export.set_defaults(func=cmd_export_schema)

    _add_client_command(commands)
    add_store_command(commands)
    return parser


def _add_database_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """db, demo-data and ledger: the commands that work on the database's schema and rows."""
    database = commands.add_parser("db", help="database schema (Alembic migrations)")
    database.add_argument(
        "db_command",
        choices=["upgrade", "current"],
        help="upgrade: apply the migrations; current: show the schema revision (exit 1 when behind)",
    )
    database.set_defaults(func=cmd_db)

    demo = commands.add_parser(
        "demo-data", help="load the demo cards into an empty database (and optionally many more)"
    )
    demo.add_argument("--cards", type=card_count, default=0, help="also load this many random cards")
    demo.add_argument("--codes-file", type=Path, help="write the generated codes here (benchmarks)")
    demo.set_defaults(func=cmd_demo_data)

    ledger = commands.add_parser("ledger", help="check the ledger")
    ledger.add_argument(
        "ledger_command",
        choices=["verify"],
        help="recompute every balance from the ledger; exit 1 on any difference",
    )
    ledger.set_defaults(func=cmd_ledger)


def _add_client_command(commands: argparse._SubParsersAction[Parser]) -> None:
    client = commands.add_parser("client", help="clients of the token endpoint (in permissions.yaml)")
    client_commands = client.add_subparsers(dest="client_command", required=True)
    client_add = client_commands.add_parser("add", help="register a client; prints its new secret once")
    client_add.add_argument("name", help="client id: letters, digits, '.', '_', '-' (at most 64)")
    client_add.add_argument(
        "--role", action="append", required=True, help="a role from permissions.yaml (repeatable)"
    )
    client_add.add_argument("--description", default="", help="a note kept with the client")
    add_store_option(client_add, "a store its tokens act on (repeatable); left out: the default store")
    client_commands.add_parser("list", help="print each client's id and roles (never secrets)")
    client_remove = client_commands.add_parser("remove", help="unregister a client")
    client_remove.add_argument("name", help="the client id to remove")
    client.set_defaults(func=cmd_client)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigurationError as exc:
        if json_logging():  # a JSON log stays one object a line, the refusal's too
            log.error("%s", exc)
        else:  # for a person: the settings themselves were refused, or the format is text
            print(f"giftcards: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
