"""The one source of the exchange rates and of the reporting currency.

Rates are fixed, so the same amount converts the same way everywhere. Three readers share
them: the generator prices in US dollars and converts with :data:`FX_PER_USD`, the live
KPIs (:mod:`ecap.kpis.money`) convert exactly with :data:`EUR_PER_UNIT_EXACT`, and the
lake (:mod:`spark_jobs.fx`) converts in floating point with :data:`EUR_PER_UNIT`. A
currency missing here cannot be reported: add its rate to :data:`FX_PER_USD`.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

REPORTING_CURRENCY = "EUR"
"""The currency every KPI and every silver and gold amount is reported in."""

FX_PER_USD: dict[str, float] = {
    "USD": 1.0,
    "CAD": 1.36,
    "MXN": 17.0,
    "BRL": 5.0,
    "PEN": 3.75,
    "EUR": 0.92,
    "GBP": 0.79,
    "CHF": 0.88,
    "SEK": 10.5,
    "PLN": 4.0,
    "ILS": 3.7,
    "ZAR": 18.5,
    "TRY": 32.0,
    "AED": 3.67,
    "INR": 83.0,
    "THB": 36.0,
    "SGD": 1.35,
    "MYR": 4.7,
    "PHP": 56.0,
    "HKD": 7.8,
    "CNY": 7.2,
    "TWD": 32.0,
    "JPY": 150.0,
    "AUD": 1.52,
    "NZD": 1.65,
}
"""Units of each currency per US dollar: fixed, illustrative rates."""


class UnknownCurrency(ValueError):
    """A currency with no fixed rate: its amounts cannot be reported in euros."""

    def __init__(self, currency: str) -> None:
        super().__init__(
            f"currency {currency} has no fixed rate to {REPORTING_CURRENCY}; add it to "
            "FX_PER_USD in ecap/currency.py or convert upstream"
        )


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
