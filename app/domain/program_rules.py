"""What a program asks of its cards (DESIGN §11), as plain functions the card and ledger paths call:
the values a card may be issued with, whether it may be loaded after issue, its balance ceiling,
when it expires, and the codes generated for it. A refusal is LIMIT_EXCEEDED naming the rule."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta

from app.domain.codes import ALPHABET
from app.domain.money import format_amount
from app.domain.reservations import check_character
from app.entities import CodeFormat, Program
from app.enums import ExpiryKind
from app.errors import LimitExceededError

MIN_ENTROPY_BITS = 64  # DESIGN §8
BITS_PER_SYMBOL = math.log2(len(ALPHABET))  # 5: the alphabet has no look-alike characters


def entropy_bits(code_format: CodeFormat) -> int:
    """Bits of entropy of a generated code: its random symbols only (the prefix is the same on every
    card, and the check character follows from the rest)."""
    return int(max(code_format.random_length, 0) * BITS_PER_SYMBOL)


def generate_code(code_format: CodeFormat) -> str:
    """A new code in ``code_format``, from ``secrets``; the caller checks it is free."""
    body = code_format.prefix + "".join(secrets.choice(ALPHABET) for _ in range(code_format.random_length))
    return body + check_character(body) if code_format.check_character else body


def matches_format(code_format: CodeFormat, code: str) -> bool:
    """Whether the normalised ``code`` could have been generated in ``code_format``: its prefix, its
    length, its alphabet and, when there is one, a check character that validates (a mistyped code
    is told apart before any lookup)."""
    random_part = code[len(code_format.prefix) : len(code_format.prefix) + code_format.random_length]
    if len(code) != code_format.length or not code.startswith(code_format.prefix):
        return False
    if any(symbol not in ALPHABET for symbol in random_part):
        return False
    return not code_format.check_character or check_character(code[:-1]) == code[-1]


def _refused(program: Program, field: str, limit: str, rule: str) -> LimitExceededError:
    return LimitExceededError(f"{field}: program {program.code} {rule}", field=field, limit=limit)


def check_value(program: Program, amount: int, field: str = "initial_value") -> None:
    """Refuses the value (minor units) a card is issued with unless the program allows it."""
    money = program.currency
    if program.denominations and amount not in program.denominations:
        shown = ", ".join(format_amount(value, money) for value in program.denominations)
        raise _refused(program, field, "denominations", f"issues cards of {shown} {money} only")
    if program.min_value is not None and amount < program.min_value:
        least = format_amount(program.min_value, money)
        raise _refused(program, field, "min_value", f"issues cards of at least {least} {money}")
    if program.max_value is not None and amount > program.max_value:
        most = format_amount(program.max_value, money)
        raise _refused(program, field, "max_value", f"issues cards of at most {most} {money}")


def check_load_after_issue(program: Program, field: str = "amount") -> None:
    """Refuses a credit to a card already issued when the program fixes its value."""
    if not program.value_changes_allowed:
        raise _refused(
            program, field, "value_changes_allowed", "does not allow value to be added after issue"
        )


def check_load(program: Program, amount: int, *, issued: bool, field: str = "amount") -> None:
    """Refuses a load (minor units) the program does not take: on a card issued without value (not
    ``issued``: PENDING, never funded) the first load is its issue, so a value the program issues;
    on one already issued, any load when the program fixes value."""
    if issued:
        check_load_after_issue(program, field)
    else:
        check_value(program, amount, field)


def daily_load_refused(program: Program, field: str = "amount") -> LimitExceededError:
    """The refusal of a load the daily-limit condition (app.store.programs.daily_load) kept out."""
    most = format_amount(program.max_daily_load or 0, program.currency)
    return _refused(
        program, field, "max_daily_load", f"loads at most {most} {program.currency} a day on a card"
    )


def balance_ceiling(program: Program | None, server_ceiling: int) -> int:
    """The most a card of ``program`` may hold (minor units): the program's maximum, never above the
    server's (GIFTCARDS_MAX_BALANCE in the card's currency). The conditional update takes it."""
    if program is None or program.max_balance is None:
        return server_ceiling
    return min(program.max_balance, server_ceiling)


def expires_at(program: Program, since: datetime) -> datetime | None:
    """When a card of ``program`` expires, counted from ``since``: its issue for AFTER_ISSUE, its
    last transaction for AFTER_ACTIVITY (so every transaction moves it); None when it never does."""
    if program.expiry_kind is ExpiryKind.NONE or program.expiry_days is None:
        return None
    return since + timedelta(days=program.expiry_days)


def expiry_moves_with_activity(program: Program) -> bool:
    return program.expiry_kind is ExpiryKind.AFTER_ACTIVITY
