"""Records as the agents get them, and the KPI ledger's Kafka side replaced by memory.

Everything else is the real code: decode, the event-time bounds, the batch step, the
ledger and the KPI arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from faust.events import Event
from faust.types.tuples import Message

from ecap.kpis.ledger import Delta, Ledger

APP = faust.App("unit-event-time", broker="memory://", store="memory://")
T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)
YEAR_2999 = datetime(2999, 12, 31, tzinfo=UTC)
YEAR_1970 = datetime(1970, 1, 1, tzinfo=UTC)


def event(topic: str, value: bytes, *, offset: int, stamp: datetime, partition: int = 0) -> Event:
    """A record as the broker hands it, with its Kafka timestamp ``stamp``."""
    message = Message(topic, partition, offset, stamp.timestamp(), 0, None, b"k", value, None)
    return Event(APP, b"k", value, None, message)


def restamped(payload: bytes, when: datetime, **changes: Any) -> bytes:
    """``payload`` with another event time (and other changes)."""
    data = orjson.loads(payload)
    return orjson.dumps({**data, **changes, "event_time": when.isoformat()})


@dataclass
class MemoryKpis:
    """``tables.kpi_ledger_topic.KpiLedger`` without Kafka: a write folds the deltas, or
    raises while ``failures`` is positive (the broker refusing the ledger record)."""

    source: str
    family: str
    ledger: Ledger
    failures: int = 0
    written: list[list[Delta]] = field(default_factory=list)

    async def prepare(self, partitions: Iterable[int]) -> None:
        return None

    async def write(self, deltas: list[Delta]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the ledger topic's leader is not available")
        self.written.append(deltas)
        for delta in deltas:
            self.ledger.apply(delta)
