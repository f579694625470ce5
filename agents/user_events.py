"""``ecap worker user-events``: sessions, the funnel, activity and top lists, live.

The agent is a thin loop over batches (``ecap.kafka.batches``: up to :data:`TAKE_MAX`
records, at most :data:`TAKE_WITHIN_S` after the first), one input partition at a time:

1. **skip** records the ledger already holds (offsets at or below the partition's last
   folded offset: a batch re-read after a crash or a rebalance);
2. **decode** each record; one that does not parse or validate goes to
   ``user-events.dlq`` with its bytes, the error and the stage, and the loop goes on;
3. **count** it into the partition's delta (``ecap.kpis.clickstream``);
4. **dead letters** are acknowledged by the broker, then the **deltas** are folded and sent
   (one ledger record per batch), see ``tables.kpi_windows``.

Nothing is written per event. A timer sends heartbeats, moves the watermark and, in the
worker holding partition 0, publishes closed windows to ``analytics-results``. The web
views (``web.live``) answer from the ledger, which every worker holds whole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP, EventT
from mode.types.signals import BaseSignalT
from pydantic import ValidationError

from ecap import metrics
from ecap.deadletter import send_dead_letters, worker_id
from ecap.events import MAX_RECORD_BYTES, EventError, FailureStage, UserEvent, decode
from ecap.faust_app import WorkerSpec
from ecap.kafka.batches import batches
from ecap.kpis import clickstream
from ecap.kpis.ledger import Delta
from ecap.topics import BY_NAME, USER_EVENTS, dlq
from tables.kpi_windows import TICK_S, KpiLedger, on_revoked
from web import live

logger = logging.getLogger(__name__)

TAKE_MAX = 4000
"""Most records per batch: the ledger write and the bookkeeping are per batch."""
TAKE_WITHIN_S = 0.02
"""Longest wait for a batch to fill: part of the delay before records show in the views."""
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024
"""Producer request limit: a dead letter carries its record base64-encoded (4/3 larger)."""


def parse(value: bytes | None) -> UserEvent:
    """The event in a record, or :class:`EventError` naming what is wrong.

    Pydantic parses valid JSON straight into the model (faster than ``decode``); a record
    it rejects goes through ``ecap.events.decode`` for the contract's own error message.
    """
    raw = value or b""
    if len(raw) <= MAX_RECORD_BYTES:
        try:
            return UserEvent.model_validate_json(raw)
        except ValidationError:
            pass
    return decode(UserEvent, raw)


class UserEventsWorker:
    """The user-events agent's batch step and its ledger."""

    def __init__(self, app: faust.App, worker: str) -> None:
        self.worker = worker
        self.kpis = KpiLedger(
            app,
            family="clickstream",
            source=USER_EVENTS,
            ledger=clickstream.new_ledger(BY_NAME[USER_EVENTS].partitions),
            results=clickstream.results,
        )
        self.dead_topic = app.topic(dlq(USER_EVENTS), key_serializer="raw", value_serializer="raw")
        self.rate = metrics.RateMeter(metrics.EVENTS_PER_SECOND.labels(USER_EVENTS))
        self._processed = metrics.EVENTS.labels(USER_EVENTS, "processed")
        self._duplicates = metrics.EVENTS.labels(USER_EVENTS, "duplicate")
        self._expired = metrics.EVENTS.labels(USER_EVENTS, "expired")
        self._late = metrics.LATE_EVENTS.labels("clickstream")
        self._latency = metrics.PROCESSING_LATENCY.labels(USER_EVENTS)

    async def consume(self, stream: faust.StreamT[bytes]) -> None:
        async for events in batches(stream, TAKE_MAX, TAKE_WITHIN_S):
            try:
                await self.process(events)
            except Exception:
                # Counted in this worker's views, maybe missing from the ledger topic.
                metrics.EVENTS.labels(USER_EVENTS, "failed").inc(len(events))
                logger.exception("a batch of %d records failed; the worker goes on", len(events))

    async def process(self, events: Sequence[EventT]) -> None:
        arrived_ms = int(time.time() * 1000)
        self.rate.add(len(events))
        by_partition: dict[int, list[EventT]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        await self.kpis.prepare(by_partition)
        ledger = self.kpis.ledger
        deltas: list[Delta] = []
        dead: list[tuple[EventT, str, FailureStage]] = []
        times: list[int] = []
        for partition, partition_events in by_partition.items():
            delta: Delta | None = None
            for event in partition_events:
                offset = event.message.offset
                if ledger.is_applied(partition, offset):
                    self._duplicates.inc()
                    continue
                if delta is None:
                    delta = Delta(partition, offset, offset, arrived_ms)
                delta.last = offset
                try:
                    user_event = parse(event.value)
                except EventError as exc:
                    dead.append((event, str(exc), exc.stage))
                    continue
                try:
                    clickstream.add(delta, ledger, user_event)
                except Exception as exc:
                    logger.exception("user event %s could not be counted", user_event.event_id)
                    dead.append((event, f"{type(exc).__name__}: {exc}", FailureStage.PROCESS))
                    continue
                times.append(clickstream.event_ms(user_event))
            if delta is not None:
                deltas.append(delta)
        await send_dead_letters(self.dead_topic, dead, self.worker)
        for delta in deltas:
            late = sum(delta.late.values())
            if late:
                self._late.inc(late)
            if delta.expired:
                self._expired.inc(delta.expired)
        await self.kpis.write(deltas)
        self._processed.inc(len(times))
        now = time.time()
        observe = self._latency.observe
        for at in times:
            observe(now - at / 1000)


def build(app: faust.App, spec: WorkerSpec) -> None:
    """Add the user-events agent, its ledger reader, its timer and the live views."""
    app.conf.producer_max_request_size = DEAD_LETTER_MAX_BYTES
    worker = UserEventsWorker(app, worker_id(spec.name, spec.instance))
    source = app.topic(USER_EVENTS, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="user-events-kpis")
    async def count_user_events(stream: faust.StreamT[bytes]) -> None:
        await worker.consume(stream)

    @app.task
    async def follow_clickstream_ledger() -> None:
        await worker.kpis.follow()

    @app.timer(TICK_S)
    async def clickstream_tick() -> None:
        await worker.kpis.tick()
        worker.rate.update()

    @app.on_partitions_revoked.connect
    def on_user_events_revoked(
        sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        revoked: set[TP] = args[0]
        on_revoked(worker.kpis, revoked)

    live.clickstream_views(app, worker.kpis)
    live.common_views(app, spec, worker.kpis)
