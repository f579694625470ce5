"""Amounts in euro cents: fixed rates, exact integer rounding, unknown currencies refused."""

from __future__ import annotations

import pytest

from ecap.currency import UnknownCurrency
from ecap.kpis.money import cents, to_eur_cents


def test_euros_stay_as_they_are() -> None:
    assert to_eur_cents(12345, "EUR") == 12345


def test_dollars_convert_at_the_fixed_rate() -> None:
    assert to_eur_cents(1000, "USD") == 920  # 10 USD at 0.92 EUR per USD


def test_an_exact_half_cent_rounds_to_the_even_cent() -> None:
    # 1 CHF = 0.92 / 0.88 EUR = 23/22: 11 centimes are 11.5 cents, 33 are 34.5
    assert to_eur_cents(11, "CHF") == 12
    assert to_eur_cents(33, "CHF") == 34


def test_cents_of_an_amount_with_two_decimals_are_exact() -> None:
    assert cents(0.29) == 29
    assert cents(19.99) == 1999


def test_a_currency_without_a_rate_is_refused_with_advice() -> None:
    with pytest.raises(UnknownCurrency, match="XXX has no fixed rate"):
        to_eur_cents(100, "XXX")
