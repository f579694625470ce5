"""The contract rejected ordinary purchases: 5,000,000 IDR (about 300 USD) and 1,500,000
JPY were over a limit of 1,000,000 in any currency, and KWD 12.345 had "more than two
decimals". Decimals now follow each currency's minor units and the limit is in euros."""

from __future__ import annotations

import orjson
import pytest

from ecap.events import Transaction, decode
from tests.unit.agents.sales_harness import PURCHASE


def _purchase(amount: float, currency: str) -> bytes:
    line = {**PURCHASE["items"][0], "unit_price": amount}
    return orjson.dumps({**PURCHASE, "amount": amount, "currency": currency, "items": [line]})


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(5_000_000, "IDR"), (1_500_000, "JPY"), (12.345, "KWD")],
)
def test_an_ordinary_purchase_is_accepted_with_its_amount(amount: float, currency: str) -> None:
    tx = decode(Transaction, _purchase(amount, currency))
    assert (tx.amount, tx.currency) == (amount, currency)
    assert tx.items[0].unit_price == amount
