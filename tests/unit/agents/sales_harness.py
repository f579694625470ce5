"""The sales KPI agent's batch step on records held in memory.

The real counter (``agents.sales_kpis``), batch step, ledger and arithmetic; only the
ledger topic and the dead-letter topic are memory (the event-time regression's doubles).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from agents.sales_kpis import SalesKpisWorker
from ecap.events import Transaction, decode
from ecap.kpis import sales
from ecap.kpis.windows import minute_of, tumbling
from ecap.topics import TRANSACTIONS
from tests.unit.doubles import FakeTopic
from tests.unit.regressions.event_time_year_2999.conftest import (
    APP,
    T0,
    MemoryKpis,
    event,
)

WINDOW = tumbling(minute_of(int(T0.timestamp() * 1000)))

PURCHASE: dict[str, Any] = {
    # No schema_version: read as the current version.
    "transaction_id": "tx-1",
    "event_time": T0.isoformat(),
    "user_id": "u-1",
    "merchant_id": "m-1",
    "type": "purchase",
    "amount": 20.0,
    "currency": "EUR",
    "items": [{"product_id": "p-1", "category": "books", "quantity": 1, "unit_price": 20.0}],
    "payment_method": "credit_card",
    "payment_instrument_id": "pi-1",
    "device_id": "d-1",
    "ip_address": "203.0.113.7",
    "channel": "web",
    "location": {"city": "Berlin", "country": "DE", "region": "EMEA", "lat": 52.5, "lon": 13.4},
}


def purchase(**changes: Any) -> bytes:
    """A purchase record; ``amount`` also sets the single line's unit price."""
    payload = {**PURCHASE, **changes}
    if "amount" in changes:
        payload["items"] = [{**PURCHASE["items"][0], "unit_price": changes["amount"]}]
    return orjson.dumps(payload)


class Sales:
    """A sales KPI worker whose batches are lists of ``(partition, offset, record)``."""

    def __init__(self, partitions: int = 6) -> None:
        self.kpis = MemoryKpis(TRANSACTIONS, "sales", sales.new_ledger(partitions))
        self.worker = SalesKpisWorker(APP, "transactions-0@test", self.kpis)  # type: ignore[arg-type]
        self.dead = FakeTopic()
        self.worker.batches.dead_topic = self.dead  # type: ignore[assignment]

    def take(self, *records: tuple[int, int, bytes], lost: int | None = None) -> None:
        """One batch, decoded as the fraud agent hands it on; the record at offset ``lost``
        is missing from what it hands on (its count raises)."""
        events = [
            event(TRANSACTIONS, value, offset=o, stamp=T0, partition=p) for p, o, value in records
        ]
        decoded: dict[tuple[int, int], Transaction | None] = {
            (p, o): decode(Transaction, value) for p, o, value in records if o != lost
        }
        asyncio.run(self.worker.follow(events, decoded))

    def all(self) -> dict[str, Any]:
        """The KPIs of the minute, for dimension ``all``."""
        return sales.window_values(self.kpis.ledger, WINDOW)["all"]["all"]
