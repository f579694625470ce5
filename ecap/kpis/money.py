"""Amounts as integer cents, and the conversion of every currency to euros.

Revenue adds up transactions in many currencies, so KPIs are reported in euros at the same
fixed rates the generator prices in and the lake normalises with
(``ecap.generator.geography.FX_PER_USD``). Each amount is converted on its own and rounded
half to even to the cent, with integer arithmetic, so a sum is exact and does not depend
on the order or the grouping of the additions.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from ecap.generator.geography import FX_PER_USD

REPORTING_CURRENCY = "EUR"


class UnknownCurrency(ValueError):
    """A currency with no fixed rate: the amount cannot be reported in euros."""


def _eur_per_unit() -> dict[str, tuple[int, int]]:
    eur = Fraction(Decimal(str(FX_PER_USD[REPORTING_CURRENCY])))
    rates = {}
    for code, units in FX_PER_USD.items():
        rate = eur / Fraction(Decimal(str(units)))
        rates[code] = (rate.numerator, rate.denominator)
    return rates


EUR_PER_UNIT = _eur_per_unit()
"""Euros per unit of each currency, as an exact fraction (numerator, denominator)."""


def cents(amount: float) -> int:
    """An amount with at most two decimals (as the contracts guarantee) in integer cents."""
    return round(amount * 100)


def to_eur_cents(local_cents: int, currency: str) -> int:
    """``local_cents`` of ``currency`` in euro cents, rounded half to even."""
    try:
        numerator, denominator = EUR_PER_UNIT[currency]
    except KeyError:
        raise UnknownCurrency(
            f"currency {currency} has no fixed rate to {REPORTING_CURRENCY}; add it to "
            "ecap.generator.geography.FX_PER_USD or convert upstream"
        ) from None
    quotient, remainder = divmod(local_cents * numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
