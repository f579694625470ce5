"""The fixed FX table: euros per unit of each currency."""

from __future__ import annotations

import pytest

from ecap.currency import EUR_PER_UNIT


def test_the_reporting_currency_converts_to_itself() -> None:
    assert EUR_PER_UNIT["EUR"] == 1.0


def test_rates_follow_the_generators_prices_per_us_dollar() -> None:
    # 1 USD = 0.92 EUR, and 0.79 GBP = 1 USD = 0.92 EUR.
    assert EUR_PER_UNIT["USD"] == pytest.approx(0.92)
    assert 79 * EUR_PER_UNIT["GBP"] == pytest.approx(92.0)
