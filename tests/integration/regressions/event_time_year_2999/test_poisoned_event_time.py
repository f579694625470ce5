"""A transaction and a user event stamped 2999-12-31, and two stamped 1970, sent by a live
producer into a running deployment (the real broker, the workers as ``make demo`` starts
them): they are dead-lettered with the reason, change no KPI, and the valid events sent
after them are counted, not expired (the watermark did not jump to year 2999)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ecap.generator.stream import Stream, StreamConfig
from ecap.generator.wire import Record
from ecap.topics import TRANSACTIONS, USER_EVENTS, dlq
from tests.integration.kpis.deployment import Deployment

pytestmark = pytest.mark.integration

SEED = 20261203
YEAR_2999 = datetime(2999, 12, 31, tzinfo=UTC)
YEAR_1970 = datetime(1970, 1, 1, tzinfo=UTC)
METRICS = ("revenue", "orders", "unique_customers")


@pytest.fixture(scope="module")
def stream() -> list[Record]:
    records = Stream(StreamConfig(rate=100.0, duration=60.0, seed=SEED)).records()
    return [r for r in records if r.topic in (TRANSACTIONS, USER_EVENTS)]


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, stream: list[Record]
) -> Iterator[Deployment]:
    deployed = Deployment(Path(tmp_path_factory.mktemp("event-time")), 1)
    try:
        deployed.start()
        deployed.send(stream)
        deployed.wait_until_processed()
        yield deployed
    finally:
        deployed.close()


def _view(deployment: Deployment, name: str, path: str) -> Any:
    status, body = deployment.get(deployment.workers[name][0], path)
    assert status == 200, body
    return body


def kpis(deployment: Deployment) -> dict[str, Any]:
    """Every sales KPI per minute, the funnel since start, and what each worker expired."""
    sales = {
        metric: {
            point["start"]: point["values"]
            for point in _view(
                deployment, "transactions", f"/kpis/timeseries?metric={metric}&dimension=all"
            )["series"]
        }
        for metric in METRICS
    }
    return {
        "sales": sales,
        "funnel": _view(deployment, "user-events", "/funnel?window=total")["steps"],
        "expired": {
            name: _view(deployment, name, "/health")["expired_events"]
            for name in ("transactions", "user-events")
        },
        "latest": {
            name: _view(deployment, name, "/health")["as_of"]["latest_event"]
            for name in ("transactions", "user-events")
        },
    }


def _poisoned(stream: list[Record], topic: str, when: datetime, tag: str) -> Record:
    """A copy of the stream's first ``topic`` record, with new ids and event time ``when``,
    sent now by a live producer (its Kafka timestamp is the wall clock)."""
    first = next(r for r in stream if r.topic == topic)
    payload = orjson.loads(first.value)
    id_field = "transaction_id" if topic == TRANSACTIONS else "event_id"
    payload.update({id_field: f"poisoned-{tag}", "event_time": when.isoformat()})
    return Record(topic, first.key, orjson.dumps(payload), int(time.time() * 1000))


def _letters(deployment: Deployment, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(value) for _, value in deployment.read_topic(dlq(topic))]


def test_poisoned_event_times_are_dead_lettered_and_change_no_kpi(
    deployment: Deployment, stream: list[Record]
) -> None:
    before = kpis(deployment)
    poisoned = [
        _poisoned(stream, topic, when, f"{topic}-{when.year}")
        for topic in (TRANSACTIONS, USER_EVENTS)
        for when in (YEAR_2999, YEAR_1970)
    ]
    deployment.send(poisoned)
    deployment.wait_until_processed()

    assert kpis(deployment) == before
    for topic in (TRANSACTIONS, USER_EVENTS):
        letters = _letters(deployment, topic)
        sent = sorted(r.value for r in poisoned if r.topic == topic)
        assert sorted(base64.b64decode(letter["payload_b64"]) for letter in letters) == sent
        assert {letter["stage"] for letter in letters} == {"validate"}
        assert all(letter["error"].startswith("event time ") for letter in letters)
    watermark = _view(deployment, "transactions", "/health")["as_of"]["watermark"]
    assert watermark <= time.time() * 1000


def test_a_transaction_after_the_poisoned_ones_is_counted_not_expired(
    deployment: Deployment, stream: list[Record]
) -> None:
    before = kpis(deployment)
    last = max(r.timestamp_ms for r in stream if r.topic == TRANSACTIONS)
    purchase = next(
        orjson.loads(r.value)
        for r in stream
        if r.topic == TRANSACTIONS and orjson.loads(r.value)["type"] == "purchase"
    )
    when = datetime.fromtimestamp(last / 1000, UTC) + timedelta(seconds=1)
    purchase.update({"transaction_id": "after-the-poison", "event_time": when.isoformat()})
    deployment.send([Record(TRANSACTIONS, b"after", orjson.dumps(purchase), last + 1000)])
    deployment.wait_until_processed()

    after = kpis(deployment)
    assert after["expired"] == before["expired"]
    minute = (last + 1000) // 60_000 * 60_000
    orders_before = before["sales"]["orders"].get(minute, {}).get("all", 0)
    assert after["sales"]["orders"][minute]["all"] == orders_before + 1
