"""``ecap worker user-events``: sessions, the funnel, activity and top lists, live.

The agent is a thin loop over batches (``ecap.kafka.batches``: up to :data:`TAKE_MAX`
records, at most :data:`TAKE_WITHIN_S` after the first) through the batch step both KPI
families share (``agents.kpi_batches``). Here a record is counted as follows:

* one that does not parse or validate goes to ``user-events.dlq`` with its bytes, the
  error and the stage, and the loop goes on;
* so does a valid event whose event time is implausible for its record timestamp (stage
  ``validate``, :mod:`ecap.event_time`): it would poison the sessions and the watermark;
* a valid event is counted into the partition's delta and its session's state there
  (``ecap.kpis.clickstream``); one that cannot be counted is dead-lettered with stage
  ``process`` and costs only itself (``agents.kpi_batches``).

The web views (``web.kpi_views``) answer from the ledger, which every worker holds whole.
"""

from __future__ import annotations

from functools import partial

import faust
from faust.types import EventT

from agents.kpi_batches import Count, KpiBatches, Rejected
from ecap.events import EventError, UserEvent, decode
from ecap.kafka.batches import batches
from ecap.kpis import clickstream
from ecap.kpis.ledger import Delta
from ecap.topics import USER_EVENTS
from tables.kpi_ledger_topic import KpiLedger

TAKE_MAX = 4000
"""Most records per batch: the ledger write and the bookkeeping are per batch."""
TAKE_WITHIN_S = 0.02
"""Longest wait for a batch to fill: part of the delay before records show in the views."""
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024
"""Producer request limit: a dead letter carries its record base64-encoded (4/3 larger)."""


def parse(value: bytes | None) -> UserEvent:
    """The event in a record, or :class:`EventError` naming what is wrong.

    Always through ``ecap.events.decode``: pydantic's own JSON parser (faster) keeps the
    last copy of a key given twice, which the contract refuses.
    """
    return decode(UserEvent, value or b"")


class UserEventsWorker:
    """The clickstream KPI family's agent body."""

    def __init__(self, app: faust.App, worker: str, kpis: KpiLedger) -> None:
        self.batches = KpiBatches(app, worker, kpis)
        self.count: Count = partial(_count, self.batches)

    async def consume(self, stream: faust.StreamT[bytes]) -> None:
        async for events in batches(stream, TAKE_MAX, TAKE_WITHIN_S):
            await self.batches.take(events, self.count)


def _count(batches: KpiBatches, event: EventT, delta: Delta) -> int:
    try:
        user_event = parse(event.value)
    except EventError as exc:
        raise Rejected(str(exc), exc.stage) from exc
    at = clickstream.event_ms(user_event)
    batches.check_time(event, at, delta.arrived_ms)
    clickstream.add(delta, batches.kpis.ledger, user_event)
    return at


def build(app: faust.App, worker_id: str, kpis: KpiLedger) -> UserEventsWorker:
    """Add the user-events agent, its ledger reader, its timer and its revocation hook."""
    app.conf.producer_max_request_size = DEAD_LETTER_MAX_BYTES
    worker = UserEventsWorker(app, worker_id, kpis)
    source = app.topic(USER_EVENTS, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="user-events-kpis")
    async def count_user_events(stream: faust.StreamT[bytes]) -> None:
        await worker.consume(stream)

    worker.batches.attach(app)
    return worker
