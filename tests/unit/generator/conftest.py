"""Shared runs of the generator, made once per test session (each takes about a second)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ecap import topics
from ecap.generator.history import HistoryConfig, Orders, generate
from ecap.generator.stream import Stream, StreamConfig
from ecap.generator.wire import Record


@dataclass
class Run:
    """A finished stream run: its records, decoded payloads and the world it left."""

    stream: Stream
    records: list[Record]
    payloads: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def transactions(self) -> list[dict[str, Any]]:
        return self.payloads[topics.TRANSACTIONS]

    @property
    def user_events(self) -> list[dict[str, Any]]:
        return self.payloads[topics.USER_EVENTS]

    @property
    def labels(self) -> dict[str, dict[str, Any]]:
        return {label["transaction_id"]: label for label in self.payloads[topics.FRAUD_LABELS]}

    def customer_index(self, customer_id: str) -> int:
        return self.stream.world.customer_ids.index(customer_id)


def make_run(config: StreamConfig) -> Run:
    stream = Stream(config)
    run = Run(stream, list(stream.records()))
    for record in run.records:
        run.payloads[record.topic].append(orjson.loads(record.value))
    return run


@pytest.fixture(scope="session")
def fraud_run() -> Run:
    """Half an hour of a busy shop (30 wall seconds at 60x) with 5% fraud: every scenario."""
    return make_run(StreamConfig(rate=2000, duration=30, seed=11, time_scale=60, fraud_rate=0.05))


@pytest.fixture(scope="session")
def default_run() -> Run:
    """An hour of the default mix (1% fraud) at 60x."""
    return make_run(StreamConfig(rate=2000, duration=60, seed=11, time_scale=60))


@pytest.fixture(scope="session")
def long_run() -> Run:
    """Ten simulated hours at a low rate: long enough for refunds and the daily curve."""
    return make_run(StreamConfig(rate=200, duration=60, seed=5, time_scale=600, customers=300))


HISTORY_END = datetime(2026, 11, 27, 8, tzinfo=UTC)


@pytest.fixture(scope="session")
def orders() -> Orders:
    """Two years of 20,000 customers (about 100,000 orders)."""
    return generate(HistoryConfig(customers=20_000, days=730, seed=3, end=HISTORY_END))
