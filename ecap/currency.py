"""The one source of the currencies ECAP accepts, their minor units and their exchange rates.

**Which currencies.** :data:`SUPPORTED` is read from Babel's copy of the CLDR data, not
written by hand: every currency some territory uses today (legal tender or not, e.g. the
Chilean ``CLF``), less the X-codes that are no territory's money (the metals ``XAU``,
``XAG``, ``XPT``, ``XPD``, the units of account and funds ``XDR``, ``XSU``, ``XUA``,
``XAD``, ``XBA``-``XBD``, the codes ``XTS`` and ``XXX``) and CLDR's offshore yuan ``CNH``,
which is no ISO 4217 code. The real X-currencies stay: ``XAF``, ``XOF``, ``XCD``,
``XCG``, ``XPF``.

**Minor units.** :data:`MINOR_UNITS` are CLDR's digits per currency (JPY 0, EUR 2, KWD 3,
CLF 4). They are ISO 4217's minor units except where CLDR records that a minor unit is
not used in practice (IDR, HUF, COP, IQD, ...: 0 digits).

**Plausibility** is a limit in the reporting currency, :data:`MAX_AMOUNT_EUR`, converted
exactly, not one number for every currency (1,000,000 IDR is about 60 USD). A currency
without a rate cannot be converted, so only :data:`MAX_DIGITS` bounds its amounts.

**Rates** are fixed and illustrative (about mid-2024, units per US dollar), so the same
amount converts the same way everywhere. Three readers share them: the generator prices in
US dollars and converts with :data:`FX_PER_USD`, the live KPIs (:mod:`ecap.kpis.money`)
convert exactly with :data:`EUR_PER_UNIT_EXACT`, and the lake (:mod:`spark_jobs.fx`)
converts in floating point with :data:`EUR_PER_UNIT`. :data:`NO_RATE` are the supported
currencies without a rate: the fund codes, and the currencies with no single usable
exchange rate. Their records are valid and kept; what each reader does with their amounts
is in ``docs/events.md`` ("Money").
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from babel.core import get_global
from babel.numbers import get_currency_precision, get_territory_currencies

REPORTING_CURRENCY = "EUR"
"""The currency every KPI and every silver and gold amount is reported in."""

MAX_AMOUNT_EUR = 1_000_000
"""Largest plausible single amount, in euros: above it a value is absurd, not a sale."""

MAX_DIGITS = 15
"""Most digits an amount has, counted to its last decimal (``amount * 10**decimals <
10**15``). Up to 15 significant digits, the binary double a JSON number is read into
names exactly one decimal, so no amount is rounded on its way (see :func:`scaled`)."""

UNITS_CEILING = 10**MAX_DIGITS

_NOT_ISO_4217 = frozenset({"CNH"})
"""In CLDR's territory data but not an ISO 4217 code (the offshore yuan)."""


def _supported(today: datetime) -> frozenset[str]:
    in_use: set[str] = set()
    tender: set[str] = set()
    for territory in get_global("territory_currencies"):
        in_use.update(get_territory_currencies(territory, today, tender=True, non_tender=True))
        tender.update(get_territory_currencies(territory, today, tender=True, non_tender=False))
    return frozenset(
        code
        for code in in_use
        if (code in tender or not code.startswith("X")) and code not in _NOT_ISO_4217
    )


SUPPORTED: frozenset[str] = _supported(datetime.now(UTC))
"""Every currency a record may name: the active ISO 4217 currencies (CLDR, today), less the
X-codes of metals, funds and tests (see the module docstring)."""

MINOR_UNITS: dict[str, int] = {code: get_currency_precision(code) for code in sorted(SUPPORTED)}
"""Decimals of each supported currency (CLDR's digits)."""

MAX_MINOR_UNITS = max(MINOR_UNITS.values())
"""The most decimals any supported currency has."""

FX_PER_USD: dict[str, float] = {
    "AED": 3.67,
    "AFN": 71.0,
    "ALL": 93.0,
    "AMD": 388.0,
    "AOA": 850.0,
    "ARS": 900.0,
    "AUD": 1.52,
    "AWG": 1.79,
    "AZN": 1.7,
    "BAM": 1.8,
    "BBD": 2.0,
    "BDT": 118.0,
    "BHD": 0.376,
    "BIF": 2870.0,
    "BMD": 1.0,
    "BND": 1.35,
    "BOB": 6.91,
    "BRL": 5.0,
    "BSD": 1.0,
    "BTN": 83.0,
    "BWP": 13.6,
    "BYN": 3.27,
    "BZD": 2.0,
    "CAD": 1.36,
    "CDF": 2800.0,
    "CHF": 0.88,
    "CLP": 930.0,
    "CNY": 7.2,
    "COP": 4000.0,
    "CRC": 520.0,
    "CVE": 101.4,
    "CZK": 23.0,
    "DJF": 177.7,
    "DKK": 6.86,
    "DOP": 59.0,
    "DZD": 134.0,
    "EGP": 48.0,
    "ERN": 15.0,
    "ETB": 57.0,
    "EUR": 0.92,
    "FJD": 2.25,
    "FKP": 0.79,
    "GBP": 0.79,
    "GEL": 2.7,
    "GHS": 14.5,
    "GIP": 0.79,
    "GMD": 68.0,
    "GNF": 8600.0,
    "GTQ": 7.77,
    "GYD": 209.0,
    "HKD": 7.8,
    "HNL": 24.7,
    "HTG": 132.0,
    "HUF": 360.0,
    "IDR": 16000.0,
    "ILS": 3.7,
    "INR": 83.0,
    "IQD": 1310.0,
    "ISK": 138.0,
    "JMD": 156.0,
    "JOD": 0.709,
    "JPY": 150.0,
    "KES": 129.0,
    "KGS": 87.0,
    "KHR": 4100.0,
    "KMF": 452.6,
    "KRW": 1350.0,
    "KWD": 0.307,
    "KYD": 0.833,
    "KZT": 470.0,
    "LAK": 21500.0,
    "LBP": 89500.0,
    "LKR": 300.0,
    "LRD": 193.0,
    "LSL": 18.5,
    "LYD": 4.85,
    "MAD": 10.0,
    "MDL": 17.7,
    "MGA": 4500.0,
    "MKD": 56.6,
    "MMK": 2100.0,
    "MNT": 3400.0,
    "MOP": 8.04,
    "MRU": 39.7,
    "MUR": 46.5,
    "MVR": 15.4,
    "MWK": 1730.0,
    "MXN": 17.0,
    "MYR": 4.7,
    "MZN": 63.9,
    "NAD": 18.5,
    "NGN": 1500.0,
    "NIO": 36.8,
    "NOK": 10.6,
    "NPR": 133.0,
    "NZD": 1.65,
    "OMR": 0.385,
    "PAB": 1.0,
    "PEN": 3.75,
    "PGK": 3.85,
    "PHP": 56.0,
    "PKR": 278.0,
    "PLN": 4.0,
    "PYG": 7500.0,
    "QAR": 3.64,
    "RON": 4.58,
    "RSD": 108.0,
    "RUB": 90.0,
    "RWF": 1300.0,
    "SAR": 3.75,
    "SBD": 8.4,
    "SCR": 13.8,
    "SDG": 600.0,
    "SEK": 10.5,
    "SGD": 1.35,
    "SHP": 0.79,
    "SLE": 22.5,
    "SOS": 571.0,
    "SRD": 31.0,
    "SSP": 1500.0,
    "STN": 22.5,
    "SZL": 18.5,
    "THB": 36.0,
    "TJS": 10.7,
    "TMT": 3.5,
    "TND": 3.1,
    "TOP": 2.35,
    "TRY": 32.0,
    "TTD": 6.78,
    "TWD": 32.0,
    "TZS": 2650.0,
    "UAH": 40.0,
    "UGX": 3750.0,
    "USD": 1.0,
    "UYU": 39.0,
    "UZS": 12600.0,
    "VND": 25000.0,
    "VUV": 119.0,
    "WST": 2.7,
    "XAF": 603.5,
    "XCD": 2.7,
    "XCG": 1.79,
    "XOF": 603.5,
    "XPF": 109.8,
    "ZAR": 18.5,
    "ZMW": 26.0,
    "ZWG": 13.8,
}
"""Units of each currency per US dollar: fixed, illustrative rates (not for accounting)."""

NO_RATE: frozenset[str] = SUPPORTED - FX_PER_USD.keys()
"""Supported currencies without a rate: the fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN,
UYI, UYW) and the currencies with several official and market rates or none that is
usable (CUP, IRR, KPW, SYP, VED, VES, YER). Any currency CLDR adds later lands here too
until it gets a rate."""


def _exact_eur_per_unit() -> dict[str, tuple[int, int]]:
    eur = Fraction(Decimal(str(FX_PER_USD[REPORTING_CURRENCY])))
    rates = {}
    for code, units in FX_PER_USD.items():
        rate = eur / Fraction(Decimal(str(units)))
        rates[code] = (rate.numerator, rate.denominator)
    return rates


EUR_PER_UNIT_EXACT = _exact_eur_per_unit()
"""Euros per unit of each currency as an exact fraction (numerator, denominator), read
from the rates as written, so integer-cent sums do not depend on binary rounding."""

EUR_PER_UNIT: dict[str, float] = {
    code: FX_PER_USD[REPORTING_CURRENCY] / units for code, units in sorted(FX_PER_USD.items())
}
"""Euros per unit of each currency in floating point, by code, for column arithmetic."""


def scaled(amount: float, decimals: int) -> int | None:
    """``amount * 10**decimals`` as an exact integer, or None when ``amount`` has more
    decimals than that.

    ``amount`` is the (finite, non-negative) double a JSON number was read into. Whenever
    the result ``n`` is below :data:`UNITS_CEILING` (callers reject larger ones), it is
    exact: if ``amount`` is the double nearest to ``n / 10**decimals``, the product is
    within ``n * 2**-52 < 0.25`` of ``n``, so ``round`` finds ``n``; and the division
    ``n / 10**decimals`` is correctly rounded (``n < 2**53``), so comparing it with
    ``amount`` accepts exactly the doubles that name a decimal with that many places.
    """
    if isinstance(amount, int):
        return amount * 10**decimals
    scale = 10**decimals
    units = round(amount * scale)
    return units if units / scale == amount else None


def max_amount(currency: str) -> Fraction | None:
    """The plausibility limit in ``currency`` (exact), or None without a rate."""
    rate = EUR_PER_UNIT_EXACT.get(currency)
    if rate is None:
        return None
    return Fraction(MAX_AMOUNT_EUR) * rate[1] / rate[0]


_LIMIT_IN_UNITS: dict[tuple[str, int], int] = {}


def plausible(units: int, decimals: int, currency: str) -> bool:
    """Whether ``units / 10**decimals`` of ``currency`` is within :data:`MAX_AMOUNT_EUR`
    (integer arithmetic, exact at the limit); always True for a currency without a rate."""
    key = (currency, decimals)
    limit = _LIMIT_IN_UNITS.get(key)
    if limit is None:
        most = max_amount(currency)
        if most is None:
            return True
        limit = _LIMIT_IN_UNITS[key] = int(most * 10**decimals)
    return units <= limit
