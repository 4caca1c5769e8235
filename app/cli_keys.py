"""The ``giftcards keys`` command: rows per key id and ring, and rotation of every code row and keyed
PIN to the current keys (in development, after adding new keys to the state file)."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import closing
from typing import TYPE_CHECKING

from app.cli_args import Parser
from app.config import Settings, load_settings
from app.errors import ConfigurationError, ConflictError
from app.logs import configure_logging

if TYPE_CHECKING:
    from app.domain.codes import CodeVault
    from app.domain.keys import KeyStatus, KeyUse
    from app.domain.pins import PinKeys
    from app.store.keys import KeyRows


def add_keys_command(commands: argparse._SubParsersAction[Parser]) -> None:
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


def _batch_size(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a batch size from 1 to 10,000")
    return int(text)


def cmd_keys(args: argparse.Namespace) -> int:
    from app import db
    from app.domain import keys
    from app.store.keys import KeyRows

    settings = load_settings(os.environ)
    configure_logging(settings)
    engine = db.create_db_engine(settings)
    key_rows = KeyRows(engine)
    try:
        db.check_schema(engine)
        vault, pins = _keyrings(settings)
        status = keys.key_status(key_rows, vault, pins)
        if args.keys_command == "status":
            return _print_key_status(status)
        if status.stale == 0 and status.stale_pins == 0:
            # Set in the environment, a keyring is the operator's to rotate: never generated here.
            if settings.keyrings_from_environment:
                _print_how_to_rotate(settings, vault, pins)
                return 0
            if not _add_keys_to_state_file(settings):
                return 1
            vault, pins = _keyrings(load_settings(os.environ))
        _rotate_codes_and_pins(key_rows, vault, pins, args.batch_size)
        _print_removable_keys(key_rows, settings, vault, pins)
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


def _rotate_codes_and_pins(key_rows: KeyRows, vault: CodeVault, pins: PinKeys, batch_size: int) -> None:
    """Every code row to the current encryption and lookup keys, then every keyed PIN to its key."""
    from app.domain import keys

    with closing(_KeyProgress()) as progress:
        moved = keys.rotate(key_rows, vault, batch_size=batch_size, progress=progress)
    print(
        f"keys rotate: {moved} rows moved; every code row is under encryption key "
        f"{vault.active_key_id} and lookup key {vault.lookup_key_id}"
    )
    with closing(_KeyProgress("PINs")) as progress:
        wrapped = keys.rotate_pins(key_rows, pins, batch_size=batch_size, progress=progress)
    print(f"keys rotate: {wrapped} PINs wrapped; every keyed PIN is under PIN key {pins.current_key_id}")


def _print_removable_keys(key_rows: KeyRows, settings: Settings, vault: CodeVault, pins: PinKeys) -> None:
    """The keys no row uses any more, and the keyring each may be removed from."""
    from app.domain import keys
    from app.state_file import STATE_FILE

    state_file = settings.state_dir / STATE_FILE
    for use in keys.key_status(key_rows, vault, pins).removable():
        ring = keys.RING_SETTINGS[use.ring] if settings.keyrings_from_environment else state_file
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

    def close(self) -> None:
        if self._last is not None:
            sys.stderr.write("\n")


def _state(use: KeyUse) -> str:
    return (
        "current" if use.current else "staged" if use.staged else "old" if use.configured else "NOT IN RING"
    )


def _print_key_status(status: KeyStatus) -> int:
    from app.domain import keys

    for ring in (keys.ENCRYPTION, keys.LOOKUP, keys.PIN):
        print(f"{ring} keys ({keys.RING_SETTINGS[ring]}, current first):")
        for use in status.keys:
            if use.ring != ring:
                continue
            rows = " ".join(f"{table}={count}" for table, count in sorted(use.rows.items())) or "no rows"
            note = "  (may be removed)" if use in status.removable() else ""
            print(f"  {use.key_id:<12} {_state(use):<12} {rows}{note}")
    hint = " (run `giftcards keys rotate`)"
    print(f"code rows to rotate: {status.stale}{hint if status.stale else ''}")
    print(f"PINs to rotate: {status.stale_pins}{hint if status.stale_pins else ''}")
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
