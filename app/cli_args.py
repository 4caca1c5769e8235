"""What the ``giftcards`` command's arguments accept (durations, counts) and how its help reads:
every option says what it does and, when it has one, its default."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

WORKERS_HELP = "worker processes (on SQLite one, unless --sqlite-multiprocess)"
SQLITE_MULTIPROCESS_HELP = (
    "on SQLite, run --workers processes anyway: lookups use more CPUs, but writers in different "
    "processes poll the database file's lock (a p99 of seconds under write load)"
)

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_UNIT_NAMES = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d`` → seconds (at least one)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 1h or 7d")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is too short: at least 1s")
    return seconds


def describe_duration(seconds: int) -> str:
    """Seconds as a person reads them, in the largest whole unit: 2592000 → ``30 days``."""
    name, size = next((name, size) for name, size in _UNIT_NAMES if seconds % size == 0)
    count = seconds // size
    return f"{count} {name}{'' if count == 1 else 's'}"


def program_version() -> str:
    try:
        return f"giftcards {version('giftcards')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "giftcards (version unknown: not installed)"


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: …)`` to an option's help when it has a default worth saying: not for
    flags, options that are unset by default, or required ones."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or not shows_default(action):
            return text
        return f"{text} (default: %(default)s)"


def shows_default(action: argparse.Action) -> bool:
    """Whether ``action``'s help must state its default."""
    unset = action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS)
    return bool(action.option_strings) and not action.required and not unset


class Parser(argparse.ArgumentParser):
    """An argument parser, and every subcommand's, with :class:`HelpFormatter`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)


def _whole_number(what: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} from {low} to {high}")
        return int(text)

    return parse


port_number = _whole_number("a port", 1, 65535)
worker_count = _whole_number("a number of workers", 1, 256)
card_count = _whole_number("a number of cards", 0, 10_000_000)
