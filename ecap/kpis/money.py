"""Amounts as integer cents, converted to the reporting currency one by one.

Revenue adds up transactions in many currencies, so KPIs are reported in euros at the fixed
rates of :mod:`ecap.currency`, the same the generator prices in and the lake normalises
with. Each amount is converted on its own and rounded half to even to the cent, with
integer arithmetic, so a sum is exact and does not depend on the order or the grouping of
the additions.
"""

from __future__ import annotations

from ecap.currency import EUR_PER_UNIT_EXACT, UnknownCurrency


def cents(amount: float) -> int:
    """An amount with at most two decimals (as the contracts guarantee) in integer cents."""
    return round(amount * 100)


def to_eur_cents(local_cents: int, currency: str) -> int:
    """``local_cents`` of ``currency`` in euro cents, rounded half to even."""
    try:
        numerator, denominator = EUR_PER_UNIT_EXACT[currency]
    except KeyError:
        raise UnknownCurrency(currency) from None
    quotient, remainder = divmod(local_cents * numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
