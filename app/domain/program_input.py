"""A program as a caller describes it (amounts as decimal strings in its currency), checked field by
field into the columns the store writes. Every refusal is BAD_USER_INPUT naming the field: a code
format of fewer than 64 bits of entropy, an expiry under GIFTCARDS_MIN_EXPIRY_DAYS, a maximum
balance over GIFTCARDS_MAX_BALANCE, values outside it, denominations together with a min/max."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.domain.codes import ALPHABET, MAX_CODE_LENGTH, MIN_CODE_LENGTH
from app.domain.money import check_currency, format_amount, minor_units, parse_amount
from app.domain.program_rules import MIN_ENTROPY_BITS, entropy_bits
from app.entities import CodeFormat, Program
from app.enums import ExpiryKind
from app.errors import BadUserInputError

MAX_PROGRAM_CODE_LENGTH = 16
MAX_PREFIX_LENGTH = 16
MAX_NAME_LENGTH = 128
MAX_DENOMINATIONS = 50
MAX_EXPIRY_DAYS = 36500  # a hundred years
_PROGRAM_CODE = re.compile(rf"[A-Z0-9_-]{{1,{MAX_PROGRAM_CODE_LENGTH}}}")


@dataclass(frozen=True)
class ProgramInput:
    """Every setting of a program, amounts as the API gives them (decimal strings)."""

    code: str
    name: str
    currency: str
    code_format: CodeFormat
    denominations: tuple[str, ...] | None = None
    min_value: str | None = None
    max_value: str | None = None
    value_changes_allowed: bool = True
    expiry_kind: ExpiryKind = ExpiryKind.NONE
    expiry_days: int | None = None
    max_balance: str | None = None
    max_daily_load: str | None = None
    is_default: bool = False


@dataclass(frozen=True)
class ProgramLimits:
    """What the server's settings ask of every program."""

    max_balance: int  # GIFTCARDS_MAX_BALANCE: whole major units of the program's currency
    min_expiry_days: int  # GIFTCARDS_MIN_EXPIRY_DAYS


def input_of(program: Program) -> ProgramInput:
    """``program`` as a caller would describe it: an edit changes this and is checked again whole."""
    money = program.currency

    def shown(value: int | None) -> str | None:
        return None if value is None else format_amount(value, money)

    return ProgramInput(
        code=program.code,
        name=program.name,
        currency=money,
        code_format=program.code_format,
        denominations=tuple(format_amount(value, money) for value in program.denominations) or None,
        min_value=shown(program.min_value),
        max_value=shown(program.max_value),
        value_changes_allowed=program.value_changes_allowed,
        expiry_kind=program.expiry_kind,
        expiry_days=program.expiry_days,
        max_balance=shown(program.max_balance),
        max_daily_load=shown(program.max_daily_load),
        is_default=program.is_default,
    )


def program_columns(given: ProgramInput, limits: ProgramLimits) -> dict[str, Any]:
    """The programs row's columns for ``given`` (all but id, store and times), or BAD_USER_INPUT."""
    if not _PROGRAM_CODE.fullmatch(given.code):
        raise BadUserInputError(
            f"code: 1 to {MAX_PROGRAM_CODE_LENGTH} capital letters, digits, '_' or '-', e.g. GC", field="code"
        )
    if not given.name.strip() or len(given.name) > MAX_NAME_LENGTH or not given.name.isprintable():
        raise BadUserInputError(
            f"name: 1 to {MAX_NAME_LENGTH} printable characters, not only spaces", field="name"
        )
    currency = check_currency(given.currency)
    _check_code_format(given.code_format)
    ceiling = minor_units(limits.max_balance, currency)
    max_balance = _amount(given.max_balance, currency, "max_balance", ceiling)
    most = ceiling if max_balance is None else max_balance
    return {
        "code": given.code,
        "name": given.name,
        "currency": currency,
        "code_prefix": given.code_format.prefix,
        "code_length": given.code_format.length,
        "code_check_character": given.code_format.check_character,
        **_values(given, currency, most),
        "value_changes_allowed": given.value_changes_allowed,
        "expiry_kind": given.expiry_kind.value,
        "expiry_days": _expiry_days(given, limits.min_expiry_days),
        "max_balance": max_balance,
        "max_daily_load": _amount(given.max_daily_load, currency, "max_daily_load", ceiling),
        "is_default": given.is_default,
    }


def _check_code_format(code_format: CodeFormat) -> None:
    prefix, length = code_format.prefix, code_format.length
    if len(prefix) > MAX_PREFIX_LENGTH or any(symbol not in ALPHABET for symbol in prefix):
        raise BadUserInputError(
            f"codeFormat.prefix: 0 to {MAX_PREFIX_LENGTH} of {ALPHABET} (no 0, 1, I or O, which "
            "read as one another)",
            field="code_format.prefix",
        )
    if not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        raise BadUserInputError(
            f"codeFormat.length: a code is {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} characters, prefix "
            "and check character included",
            field="code_format.length",
        )
    bits = entropy_bits(code_format)
    if bits < MIN_ENTROPY_BITS:
        raise BadUserInputError(
            f"codeFormat: leaves {bits} bits of entropy; at least {MIN_ENTROPY_BITS} needed (each "
            "random character gives 5; the prefix and the check character give none)",
            field="code_format",
        )


def _amount(text: str | None, currency: str, field: str, most: int) -> int | None:
    """A positive amount in ``currency``, at most ``most`` minor units; None stays None."""
    if text is None:
        return None
    amount = parse_amount(text, currency, field)
    if amount <= 0:
        raise BadUserInputError(f"{field}: must be greater than zero", field=field)
    if amount > most:
        limit = format_amount(most, currency)
        raise BadUserInputError(
            f"{field}: at most {limit} {currency}, the most a card of the program may hold", field=field
        )
    return amount


def _values(given: ProgramInput, currency: str, most: int) -> dict[str, Any]:
    """The values a card may be issued with: fixed denominations, or a minimum and a maximum."""
    if given.denominations is not None and (given.min_value is not None or given.max_value is not None):
        raise BadUserInputError(
            "denominations: give fixed denominations or a minValue/maxValue, not both", field="denominations"
        )
    minimum = _amount(given.min_value, currency, "min_value", most)
    maximum = _amount(given.max_value, currency, "max_value", most)
    if minimum is not None and maximum is not None and minimum > maximum:
        raise BadUserInputError("min_value: more than maxValue", field="min_value")
    if given.denominations is None:
        return {"denominations": None, "min_value": minimum, "max_value": maximum}
    if not 1 <= len(given.denominations) <= MAX_DENOMINATIONS:
        raise BadUserInputError(
            f"denominations: 1 to {MAX_DENOMINATIONS} values (or null for any value)", field="denominations"
        )
    values = [_amount(text, currency, "denominations", most) or 0 for text in given.denominations]
    if len(set(values)) != len(values):
        raise BadUserInputError("denominations: a value is given twice", field="denominations")
    return {"denominations": json.dumps(sorted(values)), "min_value": None, "max_value": None}


def _expiry_days(given: ProgramInput, min_days: int) -> int | None:
    if given.expiry_kind is ExpiryKind.NONE:
        if given.expiry_days is not None:
            raise BadUserInputError("expiry.days: cards that never expire take no days", field="expiry.days")
        return None
    days = given.expiry_days
    if days is None:
        raise BadUserInputError(
            f"expiry.days: {given.expiry_kind.value} needs a number of days", field="expiry.days"
        )
    if not min_days <= days <= MAX_EXPIRY_DAYS:
        raise BadUserInputError(
            f"expiry.days: {min_days} to {MAX_EXPIRY_DAYS} (GIFTCARDS_MIN_EXPIRY_DAYS is the shortest "
            "period this server allows)",
            field="expiry.days",
        )
    return days
