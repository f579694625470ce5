"""The currencies: which are supported, their minor units, the fixed rates, the limit."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ecap.currency import (
    EUR_PER_UNIT,
    FX_PER_USD,
    MAX_AMOUNT_EUR,
    MINOR_UNITS,
    NO_RATE,
    SUPPORTED,
    max_amount,
    plausible,
    scaled,
)


def test_the_reporting_currency_converts_to_itself() -> None:
    assert EUR_PER_UNIT["EUR"] == 1.0


def test_rates_follow_the_generators_prices_per_us_dollar() -> None:
    # 1 USD = 0.92 EUR, and 0.79 GBP = 1 USD = 0.92 EUR.
    assert EUR_PER_UNIT["USD"] == pytest.approx(0.92)
    assert 79 * EUR_PER_UNIT["GBP"] == pytest.approx(92.0)


def test_minor_units_come_from_cldr() -> None:
    assert (MINOR_UNITS["JPY"], MINOR_UNITS["EUR"], MINOR_UNITS["KWD"]) == (0, 2, 3)


def test_the_real_x_currencies_are_supported() -> None:
    assert {"XAF", "XOF", "XCD", "XPF"} <= SUPPORTED


def test_metals_units_of_account_and_test_codes_are_not() -> None:
    refused = {"XAU", "XAG", "XPT", "XPD", "XDR", "XSU", "XUA", "XBA", "XTS", "XXX", "CNH"}
    assert refused.isdisjoint(SUPPORTED)


def test_withdrawn_currencies_are_not_supported() -> None:
    assert {"DEM", "FRF", "HRK"}.isdisjoint(SUPPORTED)


def test_every_rate_is_for_a_supported_currency() -> None:
    assert set(FX_PER_USD) <= SUPPORTED


def test_currencies_without_a_rate_are_the_documented_ones() -> None:
    assert {"IDR", "KWD", "JPY"}.isdisjoint(NO_RATE)
    assert {"KPW", "CLF", "VES"} <= NO_RATE


def test_scaled_names_the_decimal_written() -> None:
    assert scaled(12.345, 3) == 12345
    assert scaled(12.345, 2) is None
    assert scaled(0.1 + 0.2, 2) is None  # 0.30000000000000004 is not 0.30
    assert scaled(1_500_000, 0) == 1_500_000


def test_the_limit_is_exact_at_a_million_euros() -> None:
    # 1 USD = 0.92 EUR: 1,086,956.52 USD is 999,999.9984 EUR, one cent more is over.
    assert max_amount("USD") == Fraction(MAX_AMOUNT_EUR) / Fraction(92, 100)
    assert plausible(108_695_652, 2, "USD")
    assert not plausible(108_695_653, 2, "USD")


def test_a_currency_without_a_rate_has_no_limit_in_euros() -> None:
    assert max_amount("KPW") is None
    assert plausible(10**14, 0, "KPW")
