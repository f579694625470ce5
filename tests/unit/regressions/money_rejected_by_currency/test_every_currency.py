"""Acceptance: in every supported currency, any amount a shop could charge is accepted,
and read as exactly the decimal the producer wrote.

"Could charge": written in the currency's minor units (JPY 0, EUR 2, KWD 3 decimals) and
within the plausibility limit of 1,000,000 EUR at the fixed rate; for a currency without
a rate, anything up to the contract's 15 digits. Amounts are drawn as integers of minor
units and written as JSON text, as a producer in any language would write them.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecap.currency import EUR_PER_UNIT_EXACT, MINOR_UNITS, SUPPORTED, UNITS_CEILING, max_amount
from ecap.events import Transaction, decode
from ecap.kpis.money import to_eur_cents, units
from tests.unit.agents.sales_harness import PURCHASE


def _largest_units(currency: str) -> int:
    """The largest amount a shop could charge, in minor units."""
    most = max_amount(currency)
    if most is None:
        return UNITS_CEILING - 1
    return math.floor(most * 10 ** MINOR_UNITS[currency])


def _text(minor: int, decimals: int) -> str:
    """``minor`` minor units written as a JSON number with ``decimals`` decimals."""
    if not decimals:
        return str(minor)
    whole, fraction = divmod(minor, 10**decimals)
    return f"{whole}.{fraction:0{decimals}d}"


def _record(currency: str, amount: str) -> bytes:
    line = {**PURCHASE["items"][0], "unit_price": "<amount>"}
    payload = {**PURCHASE, "amount": "<amount>", "currency": currency, "items": [line]}
    return orjson.dumps(payload).replace(b'"<amount>"', amount.encode())


def _minor_units(currency: str) -> st.SearchStrategy[int]:
    top = _largest_units(currency)
    return st.one_of(st.just(0), st.just(1), st.just(top), st.integers(0, top))


@pytest.mark.parametrize("currency", sorted(SUPPORTED))
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_every_chargeable_amount_is_accepted_and_counted_exactly(
    currency: str, data: st.DataObject
) -> None:
    decimals = MINOR_UNITS[currency]
    amount = _text(data.draw(_minor_units(currency), label="minor units"), decimals)
    tx = decode(Transaction, _record(currency, amount))
    assert Decimal(repr(tx.amount)) == Decimal(amount)
    assert Decimal(repr(tx.items[0].unit_price)) == Decimal(amount)
    rate = EUR_PER_UNIT_EXACT.get(currency)
    if rate is not None:
        exact = Decimal(amount) * 100 * rate[0] / rate[1]
        cents = exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        assert to_eur_cents(units(tx.amount, currency), currency) == int(cents)
