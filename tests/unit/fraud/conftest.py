"""Hand-made transactions for the fraud unit tests: one user, known places and times."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecap.events import Transaction
from ecap.fraud.state import UserState

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
"""A Friday noon UTC: 13:00 in Berlin (local hour from longitude 13.405: 12.89)."""

BERLIN = {"city": "Berlin", "country": "DE", "region": "EMEA", "lat": 52.52, "lon": 13.405}
NEW_YORK = {"city": "New York", "country": "US", "region": "NA", "lat": 40.7128, "lon": -74.006}
POTSDAM = {"city": "Potsdam", "country": "DE", "region": "EMEA", "lat": 52.39, "lon": 13.06}

DAY = 86_400

_ids = itertools.count(1)

MakeTx = Callable[..., Transaction]


def make_transaction(
    at: datetime | float = 0.0,
    *,
    amount: float = 50.0,
    instrument: str = "pi-home",
    device: str = "d-home",
    ip: str = "203.0.113.7",
    location: dict[str, Any] | None = None,
    transaction_id: str | None = None,
    kind: str = "purchase",
    user: str = "u-1",
    merchant: str = "m-1",
) -> Transaction:
    """A purchase by ``user``; ``at`` is a datetime or seconds after :data:`T0`."""
    when = at if isinstance(at, datetime) else T0 + timedelta(seconds=at)
    payload: dict[str, Any] = {
        "transaction_id": transaction_id or f"tx-{next(_ids)}",
        "event_time": when,
        "user_id": user,
        "merchant_id": merchant,
        "type": kind,
        "amount": amount,
        "currency": "EUR",
        "items": [{"product_id": "p-1", "category": "books", "quantity": 1, "unit_price": amount}],
        "payment_method": "credit_card",
        "payment_instrument_id": instrument,
        "device_id": device,
        "ip_address": ip,
        "channel": "web",
        "location": location or BERLIN,
    }
    if kind == "refund":
        payload["original_transaction_id"] = "tx-original"
    return Transaction.model_validate(payload)


@pytest.fixture
def tx() -> MakeTx:
    return make_transaction


REGULAR_HISTORY = ((-3 * DAY, 40.0), (-3 * DAY + 1800, 60.0), (-2 * DAY, 50.0), (-DAY, 50.0))
"""(seconds after T0, amount) of the regular user's purchases: mean 50 EUR, all at home."""


@pytest.fixture
def regular() -> UserState:
    """A user with four trusted purchases at home in Berlin around 12:00 UTC on the three
    days before T0, on device d-home, instrument pi-home, IP 203.0.113.7."""
    state = UserState()
    for at, amount in REGULAR_HISTORY:
        state.update(make_transaction(at, amount=amount))
    return state
