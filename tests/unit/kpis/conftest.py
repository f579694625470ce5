"""Hand-made transactions and user events for the KPI unit tests, at known times."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecap.currency import MINOR_UNITS
from ecap.events import Transaction, UserEvent

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
"""A minute boundary: minute slices and windows start here."""
T0_MS = int(T0.timestamp() * 1000)
BERLIN = {"city": "Berlin", "country": "DE", "region": "EMEA", "lat": 52.52, "lon": 13.405}
TOKYO = {"city": "Tokyo", "country": "JP", "region": "APAC", "lat": 35.68, "lon": 139.69}

_ids = itertools.count(1)

MakeTx = Callable[..., Transaction]
MakeEvent = Callable[..., UserEvent]


@pytest.fixture
def tx() -> MakeTx:
    def make(
        seconds: float = 0.0,
        *,
        user: str = "u-1",
        amount: float | None = None,
        currency: str = "EUR",
        items: list[tuple[str, int, float]] | None = None,
        kind: str = "purchase",
        method: str = "credit_card",
        location: dict[str, Any] | None = None,
        transaction_id: str | None = None,
    ) -> Transaction:
        lines = items or [("books", 1, 10.0)]
        decimals = MINOR_UNITS[currency]
        total = amount if amount is not None else round(sum(q * p for _, q, p in lines), decimals)
        payload: dict[str, Any] = {
            "transaction_id": transaction_id or f"tx-{next(_ids)}",
            "event_time": T0 + timedelta(seconds=seconds),
            "user_id": user,
            "merchant_id": "m-1",
            "type": kind,
            "amount": total,
            "currency": currency,
            "items": [
                {"product_id": f"p-{i}", "category": c, "quantity": q, "unit_price": p}
                for i, (c, q, p) in enumerate(lines)
            ],
            "payment_method": method,
            "payment_instrument_id": "pi-1",
            "device_id": "d-1",
            "ip_address": "203.0.113.7",
            "channel": "web",
            "location": location or BERLIN,
        }
        if kind == "refund":
            payload["original_transaction_id"] = "tx-0"
        return Transaction.model_validate(payload)

    return make


@pytest.fixture
def event() -> MakeEvent:
    def make(
        kind: str,
        seconds: float = 0.0,
        *,
        session: str = "s-1",
        user: str | None = "u-1",
        product: str | None = None,
        query: str | None = None,
    ) -> UserEvent:
        payload: dict[str, Any] = {
            "event_id": f"e-{next(_ids)}",
            "event_type": kind,
            "event_time": T0 + timedelta(seconds=seconds),
            "session_id": session,
            "user_id": user,
            "device_id": "d-1",
            "channel": "web",
            "location": BERLIN,
            "page": "/",
        }
        if kind in ("product_view", "add_to_cart", "add_to_wishlist", "remove_from_cart"):
            payload["product_id"] = product or "p-1"
        if kind == "search":
            payload["search_query"] = query or "shoes"
        if kind == "complete_checkout":
            payload["transaction_id"] = "tx-1"
        return UserEvent.model_validate(payload)

    return make
