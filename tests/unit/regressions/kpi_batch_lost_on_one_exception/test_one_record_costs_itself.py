"""A KPI batch used to be dropped whole when one record's count raised, or when the
ledger record could not be written (``KpiBatches.take`` counted the batch as failed and
went on). Now a record whose count raises is dead-lettered alone, without a trace in the
KPIs, and a batch that cannot be written is taken again until it is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import EventT

from agents import kpi_batches
from agents.kpi_batches import KpiBatches
from ecap.kpis.ledger import Delta, Ledger
from ecap.topics import USER_EVENTS
from tests.unit.doubles import FakeTopic
from tests.unit.regressions.event_time_year_2999.conftest import (
    APP,
    T0,
    MemoryKpis,
    event,
)

T0_MS = int(T0.timestamp() * 1000)
MINUTE = T0_MS // 60_000


def _batches(kpis: MemoryKpis) -> tuple[KpiBatches, FakeTopic]:
    batches = KpiBatches(APP, "user-events-0@test", kpis)  # type: ignore[arg-type]
    dead = FakeTopic()
    batches.dead_topic = dead  # type: ignore[assignment]
    return batches, dead


def _records(values: list[bytes]) -> list[Any]:
    return [event(USER_EVENTS, value, offset=i, stamp=T0) for i, value in enumerate(values)]


def count(ledger: Ledger, record: EventT, delta: Delta) -> int:
    """Counts one per record; ``boom`` counts half of itself first, then raises."""
    delta.add[(MINUTE, "events", "all", "all")] += 1
    if record.value == b"boom":
        raise ZeroDivisionError("division by zero")
    delta.see(T0_MS)
    return T0_MS


@pytest.fixture
def kpis() -> MemoryKpis:
    return MemoryKpis(USER_EVENTS, "clickstream", Ledger(12, ()))


def test_a_record_whose_count_raises_is_dead_lettered_and_leaves_no_trace(
    kpis: MemoryKpis,
) -> None:
    batches, dead = _batches(kpis)
    records = _records([b"a", b"boom", b"c"])
    asyncio.run(batches.take(records, lambda record, delta: count(kpis.ledger, record, delta)))

    assert kpis.ledger.totals[("events", "all", "all")] == 2
    assert kpis.ledger.applied == {0: 2}
    letters = dead.letters()
    assert [(letter["offset"], letter["stage"]) for letter in letters] == [(1, "process")]
    assert letters[0]["error"] == "ZeroDivisionError: division by zero"


def test_a_batch_whose_ledger_record_is_refused_is_taken_again_until_written(
    kpis: MemoryKpis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kpi_batches, "RETRY_FIRST_S", 0.0)
    kpis.failures = 2
    batches, _ = _batches(kpis)
    records = _records([b"a", b"b", b"c"])
    asyncio.run(batches.take(records, lambda record, delta: count(kpis.ledger, record, delta)))

    assert len(kpis.written) == 1
    assert kpis.ledger.totals[("events", "all", "all")] == 3
    assert kpis.ledger.applied == {0: 2}
