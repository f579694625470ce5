"""The batch step both live-KPI agents share (sales in ``agents.sales_kpis``, clickstream in
``agents.user_events``); each family only says how one record is counted.

Per batch, one input partition at a time:

1. **skip** records the ledger already holds (offsets at or below the partition's last
   folded offset: a batch re-read after a crash or a rebalance);
2. **count** every other record into the partition's :class:`~ecap.kpis.ledger.Delta`
   with the family's :data:`Count`. A record it rejects (:class:`Rejected`) goes to
   ``<source>.dlq`` with its bytes, the error and the stage; one it passes over (``None``)
   is counted as ``skipped``;
3. the **dead letters** are acknowledged by the broker, then the **deltas** are folded and
   sent, one ledger record per batch (``tables.kpi_ledger_topic``).

Nothing is written per event. A timer sends heartbeats, moves the watermark and, in the
worker holding input partition 0, publishes closed windows to ``analytics-results``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
from faust.types import TP, EventT
from mode.types.signals import BaseSignalT

from ecap import metrics
from ecap.deadletter import send_dead_letters
from ecap.events import FailureStage
from ecap.kafka.batches import by_partition
from ecap.kpis.ledger import Delta
from ecap.topics import dlq
from tables.kpi_ledger_topic import TICK_S, KpiLedger, on_revoked

logger = logging.getLogger(__name__)


class Rejected(Exception):
    """A record a family cannot count: it is dead-lettered with this error and stage."""

    def __init__(self, error: str, stage: FailureStage) -> None:
        super().__init__(error)
        self.error = error
        self.stage = stage


Count = Callable[[EventT, Delta], int | None]
"""Counts one record into the delta; returns its event time in ms, or None to pass the
record over (``skipped``); raises :class:`Rejected` to dead-letter it."""


class KpiBatches:
    """One KPI family's ledger and batch step in one worker process."""

    def __init__(self, app: faust.App, worker: str, kpis: KpiLedger) -> None:
        self.worker = worker
        self.kpis = kpis
        source, family = kpis.source, kpis.family
        self.dead_topic = app.topic(dlq(source), key_serializer="raw", value_serializer="raw")
        self.rate = metrics.RateMeter(metrics.EVENTS_PER_SECOND.labels(source))
        self._processed = metrics.EVENTS.labels(source, "processed")
        self._skipped = metrics.EVENTS.labels(source, "skipped")
        self._duplicates = metrics.EVENTS.labels(source, "duplicate")
        self._expired = metrics.EVENTS.labels(source, "expired")
        self._failed = metrics.EVENTS.labels(source, "failed")
        self._late = metrics.LATE_EVENTS.labels(family)
        self._latency = metrics.PROCESSING_LATENCY.labels(source)

    async def take(self, events: Sequence[EventT], count: Count) -> None:
        """Count one batch; a failure is logged and the worker goes on."""
        try:
            await self.process(events, count)
        except Exception:
            # Counted in this worker's views, maybe missing from the ledger topic.
            self._failed.inc(len(events))
            logger.exception("a batch of %d records failed; the worker goes on", len(events))

    async def process(self, events: Sequence[EventT], count: Count) -> None:
        arrived_ms = int(time.time() * 1000)
        self.rate.add(len(events))
        grouped = by_partition(events)
        await self.kpis.prepare(grouped)
        ledger = self.kpis.ledger
        deltas: list[Delta] = []
        dead: list[tuple[EventT, str, FailureStage]] = []
        times: list[int] = []
        for partition, partition_events in grouped.items():
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
                    at = count(event, delta)
                except Rejected as rejected:
                    dead.append((event, rejected.error, rejected.stage))
                    continue
                if at is None:
                    self._skipped.inc()
                    continue
                times.append(at)
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

    def attach(self, app: faust.App) -> None:
        """Add the ledger reader, the once-a-second tick and the revocation hook to ``app``."""
        kpis = self.kpis

        @app.task
        async def follow_ledger() -> None:
            await kpis.follow()

        @app.timer(TICK_S)
        async def tick() -> None:
            await kpis.tick()
            self.rate.update()

        @app.on_partitions_revoked.connect
        def on_kpis_revoked(
            sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
        ) -> None:
            revoked: set[TP] = args[0]
            on_revoked(kpis, revoked)
