"""Money is integer minor units plus an ISO 4217 currency, exactly as Stripe carries it.

All parsing, formatting and rounding lives here. Never a float anywhere near money.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 active codes with their minor-unit exponent. Currencies not listed have exponent 2.
_ZERO_DECIMAL = {
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "ISK",
    "JPY",
    "KMF",
    "KRW",
    "PYG",
    "RWF",
    "UGX",
    "UYI",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
}
_THREE_DECIMAL = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}
_TWO_DECIMAL = {
    "AED",
    "AFN",
    "ALL",
    "AMD",
    "ANG",
    "AOA",
    "ARS",
    "AUD",
    "AWG",
    "AZN",
    "BAM",
    "BBD",
    "BDT",
    "BGN",
    "BMD",
    "BND",
    "BOB",
    "BRL",
    "BSD",
    "BTN",
    "BWP",
    "BYN",
    "BZD",
    "CAD",
    "CDF",
    "CHF",
    "CNY",
    "COP",
    "CRC",
    "CUP",
    "CVE",
    "CZK",
    "DKK",
    "DOP",
    "DZD",
    "EGP",
    "ERN",
    "ETB",
    "EUR",
    "FJD",
    "FKP",
    "GBP",
    "GEL",
    "GHS",
    "GIP",
    "GMD",
    "GTQ",
    "GYD",
    "HKD",
    "HNL",
    "HTG",
    "HUF",
    "IDR",
    "ILS",
    "INR",
    "IRR",
    "JMD",
    "KES",
    "KGS",
    "KHR",
    "KPW",
    "KYD",
    "KZT",
    "LAK",
    "LBP",
    "LKR",
    "LRD",
    "LSL",
    "MAD",
    "MDL",
    "MGA",
    "MKD",
    "MMK",
    "MNT",
    "MOP",
    "MRU",
    "MUR",
    "MVR",
    "MWK",
    "MXN",
    "MYR",
    "MZN",
    "NAD",
    "NGN",
    "NIO",
    "NOK",
    "NPR",
    "NZD",
    "PAB",
    "PEN",
    "PGK",
    "PHP",
    "PKR",
    "PLN",
    "QAR",
    "RON",
    "RSD",
    "RUB",
    "SAR",
    "SBD",
    "SCR",
    "SDG",
    "SEK",
    "SGD",
    "SHP",
    "SLE",
    "SOS",
    "SRD",
    "SSP",
    "STN",
    "SVC",
    "SYP",
    "SZL",
    "THB",
    "TJS",
    "TMT",
    "TOP",
    "TRY",
    "TTD",
    "TWD",
    "TZS",
    "UAH",
    "USD",
    "UYU",
    "UZS",
    "VES",
    "WST",
    "XCD",
    "YER",
    "ZAR",
    "ZMW",
    "ZWL",
}
CURRENCIES = frozenset(_ZERO_DECIMAL | _THREE_DECIMAL | _TWO_DECIMAL)
CURRENCY_CHOICES = sorted((c, c) for c in CURRENCIES)

# No single sale in an affiliate program is larger than this (10^12 minor units = 10 billion USD);
# anything bigger is a client bug, and refusing it keeps every product below bigint range.
MAX_AMOUNT_MINOR = 10**12

_AMOUNT_RE = re.compile(r"^-?\d{1,15}(\.\d{1,3})?$")


class MoneyError(ValueError):
    pass


def is_currency(code: str) -> bool:
    return isinstance(code, str) and code.upper() in CURRENCIES


def exponent(currency: str) -> int:
    code = currency.upper()
    if code not in CURRENCIES:
        raise MoneyError(f"Unknown currency {currency!r}.")
    if code in _ZERO_DECIMAL:
        return 0
    if code in _THREE_DECIMAL:
        return 3
    return 2


def round_half_up(value: Decimal) -> int:
    """Round a Decimal amount of minor units to an integer, halves away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_amount(value: str, currency: str) -> int:
    """Parse a major-unit decimal string ("99.00") into minor units, refusing excess precision."""
    if not isinstance(value, str) or not _AMOUNT_RE.match(value.strip()):
        raise MoneyError('Amount must be a decimal string such as "99.00".')
    exp = exponent(currency)
    try:
        dec = Decimal(value.strip())
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise MoneyError("Amount is not a number.") from exc
    minor = dec.scaleb(exp)
    if minor != minor.to_integral_value():
        raise MoneyError(f"{currency.upper()} has {exp} decimal places; {value!r} has more.")
    return int(minor)


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-exponent(currency))


@functools.lru_cache(maxsize=4096)
def format_amount(amount_minor: int, currency: str) -> str:
    """ "12.34 USD"-style plain formatting used in emails, CSVs and explanations. Remembered: a
    commission's explanation formats two amounts, and a program's prices and commissions repeat."""
    exp = exponent(currency)
    quantum = Decimal(1).scaleb(-exp)
    return f"{to_decimal(amount_minor, currency).quantize(quantum):,} {currency.upper()}"


def percent_of(amount_minor: int, rate_bp: int) -> int:
    """rate_bp basis points of amount_minor, rounded half up once."""
    return round_half_up(Decimal(amount_minor) * Decimal(rate_bp) / Decimal(10_000))
