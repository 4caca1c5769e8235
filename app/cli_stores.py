"""The ``giftcards store`` command (add and list stores), and the ``--store`` options of ``token`` and
``client add``: ids checked as they are parsed, and a token's stores checked against the database."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from app.cli_args import Parser
from app.config import Settings, load_settings
from app.errors import BadUserInputError, ConfigurationError, ConflictError
from app.logs import configure_logging
from app.stores import STORE_ID_RULE, is_store_id, validate_store_name

if TYPE_CHECKING:
    from app.entities import Store
    from app.store.stores import StoreDirectory

T = TypeVar("T")


def store_id(text: str) -> str:
    """An argument that must be a store id."""
    if not is_store_id(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a store id: {STORE_ID_RULE}")
    return text


def store_name(text: str) -> str:
    try:
        return str(validate_store_name(text))
    except BadUserInputError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a store {exc}") from None


def add_store_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--store", action="append", type=store_id, metavar="ID", help=help)


def add_token_store_options(token: argparse.ArgumentParser) -> None:
    """``--store ID`` (repeatable) or ``--no-stores``: the token's ``stores`` claim."""
    stores = token.add_mutually_exclusive_group()
    stores.add_argument(
        "--store",
        action="append",
        type=store_id,
        metavar="ID",
        help="a store the token acts on (repeatable; the database must know it); left out: the default store",
    )
    stores.add_argument(
        "--no-stores", action="store_true", help="an empty stores claim: the token acts on no store"
    )


def token_stores(args: argparse.Namespace, settings: Settings) -> list[str] | None:
    """The ``stores`` claim the options ask for (None: no claim); a store the database does not
    know is refused, as the server would refuse every request of the token."""
    if args.no_stores:
        return []
    if not args.store:
        return None
    unknown = _with_directory(settings, lambda directory: directory.unknown(args.store))
    if unknown is not None:
        raise ConfigurationError(
            f"--store {unknown}: the database has no such store; add it with `giftcards store add {unknown}`"
        )
    return list(dict.fromkeys(args.store))


def add_store_command(commands: argparse._SubParsersAction[Parser]) -> None:
    store = commands.add_parser("store", help="stores: the merchants or brands whose cards this server keeps")
    store_commands = store.add_subparsers(dest="store_command", required=True)
    store_add = store_commands.add_parser("add", help="add a store; prints it")
    store_add.add_argument("id", type=store_id, help=f"the store's id: {STORE_ID_RULE}")
    store_add.add_argument("--name", type=store_name, help="a name people read, e.g. the brand's")
    store_commands.add_parser("list", help="print every store: id, name and when it was added")
    store.set_defaults(func=cmd_store)


def cmd_store(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    configure_logging(settings)
    if args.store_command == "add":
        try:
            added = _with_directory(settings, lambda directory: directory.add(args.id, args.name))
        except ConflictError:
            print(f"giftcards: store {args.id} already exists", file=sys.stderr)
            return 1
        print(format_stores([added]), end="")
        return 0
    print(format_stores(_with_directory(settings, lambda directory: directory.list())), end="")
    return 0


def format_stores(stores: Sequence[Store]) -> str:
    """One store a line: id, name (``-`` without one) and when it was added, in aligned columns."""
    rows = [(store.id, store.name or "-", store.created_at.isoformat(timespec="seconds")) for store in stores]
    id_width = max((len(row[0]) for row in rows), default=0)
    name_width = max((len(row[1]) for row in rows), default=0)
    return "".join(f"{i.ljust(id_width)}  {name.ljust(name_width)}  {created}\n" for i, name, created in rows)


def _with_directory(settings: Settings, use: Callable[[StoreDirectory], T]) -> T:
    from app import db
    from app.store.stores import StoreDirectory

    engine = db.create_db_engine(settings)
    try:
        db.check_schema(engine)
        return use(StoreDirectory(engine))
    finally:
        engine.dispose()
