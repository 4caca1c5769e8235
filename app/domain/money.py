"""Money as integer minor units; decimal strings at the edge, checked against the currency."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from app.errors import BadUserInputError

# ISO 4217 minor-unit exponents of the currencies a card may hold. Extend as needed: a currency
# not listed here is refused rather than guessed.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2, "DKK": 2,
    "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3,
    "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2, "SEK": 2,
    "SGD": 2, "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "USD": 2, "VND": 0, "ZAR": 2,
}

# Largest amount accepted in one value, in minor units (fits comfortably in BIGINT).
MAX_MINOR_UNITS = 10**15

_AMOUNT = re.compile(r"^[+-]?\d{1,16}(\.\d{1,6})?$")


def check_currency(currency: str, field: str = "currency") -> str:
    if currency not in CURRENCY_EXPONENTS:
        raise BadUserInputError(
            f"{field}: unsupported currency {currency!r}; use an ISO 4217 code such as USD",
            field=field,
        )
    return currency


def parse_amount(text: str, currency: str, field: str = "amount") -> int:
    """``"-6.49"`` in USD → ``-649``. Refuses more decimals than the currency has."""
    exponent = CURRENCY_EXPONENTS[currency]
    if not _AMOUNT.match(text):
        raise BadUserInputError(f"{field}: not a decimal amount like \"25.00\"", field=field)
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern above admits only decimals
        raise BadUserInputError(f"{field}: not a decimal amount", field=field) from None
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise BadUserInputError(
            f"{field}: {currency} allows at most {exponent} decimal places", field=field
        )
    if abs(minor) > MAX_MINOR_UNITS:
        raise BadUserInputError(f"{field}: amount is too large", field=field)
    return int(minor)


def format_amount(minor: int, currency: str) -> str:
    """``-649`` in USD → ``"-6.49"``; always the currency's number of decimals."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    if exponent == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"
