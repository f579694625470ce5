"""The contract coerced what a producer should have been told was wrong: the amount
``"50.00"`` (a string) and ``true`` (read as 1.0) were accepted, and so was
``marketing_opt_in: "yes"``. Money and flags are strict types now."""

from __future__ import annotations

import orjson
import pytest

from ecap.events import Customer, EventError, FailureStage, Transaction, decode
from tests.unit.agents.sales_harness import PURCHASE

CUSTOMER = {
    "customer_id": "u-1",
    "event_time": "2026-11-27T10:15:00Z",
    "signup_time": "2025-03-01T08:00:00Z",
    "segment": "loyal",
    "home": PURCHASE["location"],
    "currency": "EUR",
    "email_domain": "example.org",
    "marketing_opt_in": False,
}


@pytest.mark.parametrize("amount", ["50.00", True, False])
def test_an_amount_that_is_not_a_json_number_is_rejected(amount: object) -> None:
    with pytest.raises(EventError, match="amount") as info:
        decode(Transaction, orjson.dumps({**PURCHASE, "amount": amount}))
    assert info.value.stage is FailureStage.VALIDATE


@pytest.mark.parametrize("price", ["20.00", True])
def test_a_line_price_that_is_not_a_json_number_is_rejected(price: object) -> None:
    line = {**PURCHASE["items"][0], "unit_price": price}
    with pytest.raises(EventError, match=r"items\.0\.unit_price"):
        decode(Transaction, orjson.dumps({**PURCHASE, "items": [line]}))


@pytest.mark.parametrize("flag", ["yes", "true", 1, 0, "off"])
def test_a_flag_that_is_not_a_json_boolean_is_rejected(flag: object) -> None:
    with pytest.raises(EventError, match="marketing_opt_in"):
        decode(Customer, orjson.dumps({**CUSTOMER, "marketing_opt_in": flag}))
