"""A year-2999 or a 1970 event is dead-lettered by the agent that reads it and changes no
KPI, no session and no fraud state; the events around it count as before."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from agents.transactions import TransactionsWorker
from agents.user_events import UserEventsWorker
from ecap.events import Transaction, UserEvent, encode
from ecap.kpis import clickstream
from ecap.topics import TRANSACTIONS, USER_EVENTS
from tables import user_state as tables
from tests.unit.doubles import FakeTopic

from .conftest import APP, T0, YEAR_1970, YEAR_2999, MemoryKpis, event, restamped

VIEW = encode(
    UserEvent.model_validate(
        {
            "event_id": "e-0",
            "event_type": "page_view",
            "event_time": T0,
            "session_id": "s-1",
            "user_id": "u-1",
            "device_id": "d-1",
            "channel": "web",
            "location": {
                "city": "Berlin",
                "country": "DE",
                "region": "EMEA",
                "lat": 52.5,
                "lon": 13.4,
            },
            "page": "/",
        }
    )
)


def _clicks() -> tuple[UserEventsWorker, MemoryKpis, FakeTopic]:
    kpis = MemoryKpis(USER_EVENTS, "clickstream", clickstream.new_ledger(12))
    worker = UserEventsWorker(APP, "user-events-0@test", kpis)  # type: ignore[arg-type]
    dead = FakeTopic()
    worker.batches.dead_topic = dead  # type: ignore[assignment]
    return worker, kpis, dead


def _views(*times_and_ids: tuple[Any, str]) -> list[Any]:
    return [
        event(USER_EVENTS, restamped(VIEW, when, event_id=eid), offset=i, stamp=T0)
        for i, (when, eid) in enumerate(times_and_ids)
    ]


def test_poisoned_user_events_are_dead_lettered_and_change_no_kpi() -> None:
    clean, clean_kpis, _ = _clicks()
    asyncio.run(
        clean.batches.take(_views((T0, "e-1"), (T0 + timedelta(seconds=5), "e-2")), clean.count)
    )

    worker, kpis, dead = _clicks()
    batch = _views(
        (T0, "e-1"),
        (YEAR_2999, "e-2999"),
        (YEAR_1970, "e-1970"),
        (T0 + timedelta(seconds=5), "e-2"),
    )
    asyncio.run(worker.batches.take(batch, worker.count))

    assert dict(kpis.ledger.totals) == dict(clean_kpis.ledger.totals)
    assert kpis.ledger.sessions == clean_kpis.ledger.sessions
    assert kpis.ledger.max_event_ms == clean_kpis.ledger.max_event_ms
    letters = dead.letters()
    assert [(letter["offset"], letter["stage"]) for letter in letters] == [
        (1, "validate"),
        (2, "validate"),
    ]
    assert letters[0]["error"].startswith("event time 2999-12-31T00:00:00Z is ")
    assert letters[1]["error"].startswith("event time 1970-01-01T00:00:00Z is before 1990")


# ---------------------------------------------------------------------- the fraud agent


TX = encode(
    Transaction.model_validate(
        {
            "transaction_id": "tx-0",
            "event_time": T0,
            "user_id": "alice",
            "merchant_id": "m-1",
            "amount": 40.0,
            "currency": "EUR",
            "items": [
                {"product_id": "p-1", "category": "books", "quantity": 1, "unit_price": 40.0}
            ],
            "payment_method": "credit_card",
            "payment_instrument_id": "pi-1",
            "device_id": "d-1",
            "ip_address": "10.0.0.1",
            "channel": "web",
            "location": {
                "city": "Berlin",
                "country": "DE",
                "region": "EMEA",
                "lat": 52.5,
                "lon": 13.4,
            },
        }
    )
)


@pytest.mark.parametrize("when", [YEAR_2999, YEAR_1970], ids=["2999", "1970"])
def test_a_poisoned_transaction_is_dead_lettered_before_it_reaches_the_users_state(
    fraud: TransactionsWorker, when: Any
) -> None:
    partition = tables.partition_for("alice")
    good = event(TRANSACTIONS, TX, offset=0, stamp=T0, partition=partition)
    poisoned = event(
        TRANSACTIONS,
        restamped(TX, when, transaction_id="tx-bad"),
        offset=1,
        stamp=T0,
        partition=partition,
    )
    decoded = asyncio.run(fraud.process([good, poisoned]))

    assert decoded[partition, 1] is None  # the sales KPIs skip it
    letters = fraud.dead_topic.letters()  # type: ignore[attr-defined]
    assert [(letter["offset"], letter["stage"]) for letter in letters] == [(1, "validate")]
    assert letters[0]["error"].startswith("event time ")
    state = fraud.partitions[partition].users[tables.user_key("alice")]
    assert state.count == 1
