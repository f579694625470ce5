"""Amounts as exact integers, converted to euro cents one by one.

Revenue adds up transactions in many currencies, so KPIs are reported in euros at the fixed
rates of :mod:`ecap.currency`, the same the generator prices in and the lake normalises
with. Each amount is read as the decimal its producer wrote (:func:`units`: exact, see
:func:`ecap.currency.scaled`), converted on its own with integer arithmetic and rounded
half to even to the cent once, so a sum is exact and does not depend on the order or the
grouping of the additions.

A currency without a rate (:data:`ecap.currency.NO_RATE`) has no euro value:
:func:`to_eur_cents` answers None and the caller counts the record without its amount.
"""

from __future__ import annotations

from fractions import Fraction

from ecap.currency import EUR_PER_UNIT_EXACT, MINOR_UNITS, scaled


def scale_of(currency: str) -> int:
    """Decimals of the integer units an amount in ``currency`` is counted in: enough for
    every record the contract accepts (its minor units, and two for version 1)."""
    return max(2, MINOR_UNITS[currency])


def units(amount: float, currency: str) -> int:
    """``amount`` of ``currency`` in units of ``10**-scale_of(currency)``, exactly."""
    counted = scaled(amount, scale_of(currency))
    if counted is None:
        raise ValueError(
            f"{amount} {currency} has more decimals than the contract allows; decode "
            "records with ecap.events.decode"
        )
    return counted


def _cents_per_unit() -> dict[str, tuple[int, int]]:
    out = {}
    for code, (numerator, denominator) in EUR_PER_UNIT_EXACT.items():
        rate = Fraction(numerator * 100, denominator * 10 ** scale_of(code))
        out[code] = (rate.numerator, rate.denominator)
    return out


_EUR_CENTS_PER_UNIT = _cents_per_unit()
"""Euro cents per unit of :func:`units`, as an exact fraction, per currency with a rate."""


def to_eur_cents(local_units: int, currency: str) -> int | None:
    """``local_units`` (see :func:`units`) of ``currency`` in euro cents, rounded half to
    even; None when the currency has no rate."""
    rate = _EUR_CENTS_PER_UNIT.get(currency)
    if rate is None:
        return None
    numerator, denominator = rate
    quotient, remainder = divmod(local_units * numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
