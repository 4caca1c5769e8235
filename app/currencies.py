"""Currencies a card may hold, with their ISO 4217 minor-unit exponents."""

from __future__ import annotations

# Grouped by exponent. Extend as needed: a currency not listed here is refused rather than guessed.
_BY_EXPONENT = {
    0: "CLP ISK JPY KRW VND",
    2: "AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF IDR ILS INR MXN NOK NZD PLN SEK SGD THB TRY TWD USD ZAR",
    3: "BHD JOD KWD OMR TND",
}
CURRENCY_EXPONENTS: dict[str, int] = dict(
    sorted((code, exponent) for exponent, codes in _BY_EXPONENT.items() for code in codes.split())
)
