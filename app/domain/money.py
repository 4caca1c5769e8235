"""Money as integer minor units; decimal strings at the edge, checked against the currency."""

from __future__ import annotations

import re
from decimal import Decimal

from app.currencies import CURRENCY_EXPONENTS
from app.enums import TransType
from app.errors import BadUserInputError

# Largest amount accepted in one value, in minor units (fits comfortably in BIGINT).
MAX_MINOR_UNITS = 10**15

_AMOUNT = re.compile(r"[+-]?[0-9]{1,16}(\.[0-9]{1,6})?")


def check_currency(currency: str, field: str = "currency") -> str:
    if currency not in CURRENCY_EXPONENTS:
        raise BadUserInputError(f"{field}: not a supported ISO 4217 currency code (such as USD)", field=field)
    return currency


def check_amount(text: str, field: str = "amount") -> Decimal:
    """The amount as a decimal, whatever the currency: its syntax only."""
    if not _AMOUNT.fullmatch(text):
        raise BadUserInputError(f'{field}: not a decimal amount like "25.00"', field=field)
    return Decimal(text)  # the pattern admits decimals only


def parse_amount(text: str, currency: str, field: str = "amount") -> int:
    """``"-6.49"`` in USD → ``-649``. Refuses more decimals than the currency has."""
    exponent = CURRENCY_EXPONENTS[currency]
    minor = check_amount(text, field).scaleb(exponent)
    if minor != minor.to_integral_value():
        raise BadUserInputError(f"{field}: {currency} allows at most {exponent} decimal places", field=field)
    if abs(minor) > MAX_MINOR_UNITS:
        raise BadUserInputError(f"{field}: amount is too large", field=field)
    return int(minor)


def minor_units(major: int, currency: str) -> int:
    """Whole major units in minor units: ``10`` USD → ``1000``, ``10`` JPY → ``10``."""
    return int(major * 10 ** CURRENCY_EXPONENTS[currency])


def format_amount(minor: int, currency: str) -> str:
    """``-649`` in USD → ``"-6.49"``; always the currency's number of decimals."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    if exponent == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def check_sign(trans_type: TransType, amount: Decimal | int) -> None:
    """Refuses a zero amount, a negative ADD and a positive USE."""
    if amount == 0:
        raise BadUserInputError("amount: must not be zero", field="amount")
    if trans_type is TransType.ADD and amount < 0:
        raise BadUserInputError("amount: an ADD is positive", field="amount")
    if trans_type is TransType.USE and amount > 0:
        raise BadUserInputError("amount: a USE is negative", field="amount")
