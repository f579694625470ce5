"""Amounts in euro cents: exact units, fixed rates, exact integer rounding, no rate no value."""

from __future__ import annotations

import pytest

from ecap.currency import EUR_PER_UNIT_EXACT, MINOR_UNITS, NO_RATE, max_amount
from ecap.kpis.money import scale_of, to_eur_cents, units


def test_euros_stay_as_they_are() -> None:
    assert to_eur_cents(units(123.45, "EUR"), "EUR") == 12345


def test_dollars_convert_at_the_fixed_rate() -> None:
    assert to_eur_cents(units(10, "USD"), "USD") == 920  # 10 USD at 0.92 EUR per USD


def test_an_exact_half_cent_rounds_to_the_even_cent() -> None:
    # 1 CHF = 0.92 / 0.88 EUR = 23/22: 11 centimes are 11.5 cents, 33 are 34.5
    assert to_eur_cents(units(0.11, "CHF"), "CHF") == 12
    assert to_eur_cents(units(0.33, "CHF"), "CHF") == 34


def test_units_of_an_amount_are_exact() -> None:
    assert units(0.29, "EUR") == 29
    assert units(19.99, "EUR") == 1999


def test_a_third_decimal_is_counted_not_rounded() -> None:
    # 12.345 KWD and 12.344 KWD differ by a fils: 0.92 / 0.307 EUR per KWD.
    assert units(12.345, "KWD") == 12345
    assert to_eur_cents(units(12.345, "KWD"), "KWD") == 3699  # 36.994... EUR
    assert to_eur_cents(units(12.344, "KWD"), "KWD") == 3699
    assert to_eur_cents(units(12.35, "KWD"), "KWD") == 3701


def test_whole_yen_and_rupiah_convert() -> None:
    assert to_eur_cents(units(1_500_000, "JPY"), "JPY") == 920_000  # 9,200 EUR
    assert to_eur_cents(units(5_000_000, "IDR"), "IDR") == 28_750  # 287.50 EUR


def test_a_currency_without_a_rate_has_no_euro_value() -> None:
    assert "KPW" in NO_RATE
    assert to_eur_cents(units(1000, "KPW"), "KPW") is None


@pytest.mark.parametrize("currency", sorted(EUR_PER_UNIT_EXACT))
def test_every_plausible_amount_is_counted_in_exact_integers(currency: str) -> None:
    # The largest amount the contract accepts, in counted units, stays below 2**53: the
    # float it was read from and the integer it is counted in name the same decimal.
    most = max_amount(currency)
    assert most is not None
    assert most * 10 ** scale_of(currency) < 2**53
    assert scale_of(currency) >= MINOR_UNITS[currency]
