"""The batch step both live-KPI agents share (sales in ``agents.sales_kpis``, clickstream in
``agents.user_events``); each family only says how one record is counted.

Per batch, one input partition at a time:

1. **skip** records the ledger already holds (offsets at or below the partition's last
   folded offset: a batch re-read after a crash or a rebalance);
2. **count** every other record into the partition's :class:`~ecap.kpis.ledger.Delta`
   with the family's :data:`Count`. A record it rejects (:class:`Rejected`, e.g. an event
   time out of bounds, :mod:`ecap.event_time`) goes to ``<source>.dlq`` with its bytes,
   the error and the stage; one it passes over (``None``) is counted as ``skipped``;
3. the **dead letters** are acknowledged by the broker, then the **deltas** are sent as
   one ledger record per batch, acknowledged, and folded (``tables.kpi_ledger_topic``).
   The delta's ceiling, the batch's largest record timestamp, keeps one outlying event
   time from dragging the watermark (:mod:`ecap.kpis.windows`).

Nothing is written per event. A timer sends heartbeats, moves the watermark and, in the
worker holding input partition 0, publishes closed windows to ``analytics-results``.

**Every record is counted or dead-lettered on its own; no batch is dropped.**

* A record whose count raises anything but :class:`Rejected` (a bug, or data no check
  foresaw) is dead-lettered with stage ``process``, and the partition's records are
  counted again into a fresh delta without it. A count may have changed the delta before
  it raised, so the record cannot simply be left out of the delta it half-entered; the
  second pass reads the same ledger and the same records, so it yields exactly the
  delta of the good records (the loop ends: each pass that fails sets at least one more
  record aside).
* When the batch cannot be written (the broker refuses or does not acknowledge the dead
  letters or the ledger record), it is **taken again**, after a pause that doubles up to
  :data:`RETRY_MAX_S`, until it is written; ``ecap_kpi_write_retries_total`` and the log
  say so. Retrying rather than letting the agent crash: Faust would restart the agent
  in-process without handing it the batch again, so the batch would be lost until the
  worker restarts, and its unacknowledged offsets would hold back every commit of the
  partition. Taking the batch again is safe: the ledger record is folded only once it is
  acknowledged, so a retry counts the same records into the same deltas, dead letters are
  at-least-once (same source offsets), and a ledger record that reached the broker
  despite the error is folded once, by its offsets. Meanwhile the partition's lag grows
  (``ecap_consumer_lag``) and nothing is committed past the batch, so even a worker
  stopped then loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP, EventT
from mode.types.signals import BaseSignalT

from ecap import metrics
from ecap.deadletter import send_dead_letters
from ecap.event_time import Bounds, EventTimeError, record_ms
from ecap.events import FailureStage
from ecap.kafka.batches import by_partition
from ecap.kpis.ledger import Delta
from ecap.settings import get_settings
from ecap.topics import dlq
from tables.kpi_ledger_topic import TICK_S, KpiLedger, on_revoked

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0

Dead = tuple[EventT, str, FailureStage]


class Rejected(Exception):
    """A record a family cannot count: it is dead-lettered with this error and stage.
    Raised before the record changed the delta."""

    def __init__(self, error: str, stage: FailureStage) -> None:
        super().__init__(error)
        self.error = error
        self.stage = stage


Count = Callable[[EventT, Delta], int | None]
"""Counts one record into the delta; returns its event time in ms, or None to pass the
record over (``skipped``); raises :class:`Rejected` to dead-letter it. ``delta.arrived_ms``
is the wall clock of the batch (for :meth:`KpiBatches.check_time`)."""


@dataclass
class _Counted:
    """One counting pass over one partition's records of a batch."""

    delta: Delta | None = None
    dead: list[Dead] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    skipped: int = 0
    duplicates: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    """Offset -> error of the records whose count raised (not :class:`Rejected`)."""


class KpiBatches:
    """One KPI family's ledger and batch step in one worker process."""

    def __init__(
        self, app: faust.App, worker: str, kpis: KpiLedger, bounds: Bounds | None = None
    ) -> None:
        self.worker = worker
        self.kpis = kpis
        self.bounds = bounds or Bounds.from_settings(get_settings())
        source, family = kpis.source, kpis.family
        self.dead_topic = app.topic(dlq(source), key_serializer="raw", value_serializer="raw")
        self.rate = metrics.RateMeter(metrics.EVENTS_PER_SECOND.labels(source))
        self._processed = metrics.EVENTS.labels(source, "processed")
        self._skipped = metrics.EVENTS.labels(source, "skipped")
        self._duplicates = metrics.EVENTS.labels(source, "duplicate")
        self._expired = metrics.EVENTS.labels(source, "expired")
        self._late = metrics.LATE_EVENTS.labels(family)
        self._latency = metrics.PROCESSING_LATENCY.labels(source)
        self._retries = metrics.KPI_WRITE_RETRIES.labels(family)

    def check_time(self, event: EventT, event_ms: int, now_ms: int) -> None:
        """Raise :class:`Rejected` (stage ``validate``) if the record's event time is out
        of bounds for its record timestamp (:mod:`ecap.event_time`)."""
        try:
            self.bounds.check(event_ms, record_ms(event.message.timestamp), now_ms)
        except EventTimeError as exc:
            metrics.EVENT_TIME_REJECTED.labels(self.kpis.source, exc.bound.value).inc()
            raise Rejected(str(exc), exc.stage) from exc

    async def take(self, events: Sequence[EventT], count: Count) -> None:
        """Count one batch and write it, taking it again until it is written."""
        delay = RETRY_FIRST_S
        self.rate.add(len(events))
        while True:
            try:
                await self.process(events, count)
                return
            except Exception:
                self._retries.inc()
                logger.exception(
                    "%s: a batch of %d records could not be written; taking it again in "
                    "%.1f s (nothing is dropped or committed meanwhile)",
                    self.kpis.family,
                    len(events),
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def process(self, events: Sequence[EventT], count: Count) -> None:
        """One attempt at a batch: count, dead-letter, write (see the module docstring)."""
        arrived_ms = int(time.time() * 1000)
        grouped = by_partition(events)
        await self.kpis.prepare(grouped)
        counted = [
            self._count(partition, partition_events, count, arrived_ms)
            for partition, partition_events in grouped.items()
        ]
        await send_dead_letters(
            self.dead_topic, [dead for c in counted for dead in c.dead], self.worker
        )
        deltas = [c.delta for c in counted if c.delta is not None]
        await self.kpis.write(deltas)
        for delta in deltas:
            late = sum(delta.late.values())
            if late:
                self._late.inc(late)
            if delta.expired:
                self._expired.inc(delta.expired)
        now = time.time()
        observe = self._latency.observe
        for c in counted:
            self._skipped.inc(c.skipped)
            self._duplicates.inc(c.duplicates)
            self._processed.inc(len(c.times))
            for at in c.times:
                observe(now - at / 1000)

    def _count(
        self, partition: int, events: Sequence[EventT], count: Count, arrived_ms: int
    ) -> _Counted:
        """Count a partition's records, again without each record whose count raised."""
        poisoned: dict[int, str] = {}
        while True:
            counted = self._count_pass(partition, events, count, arrived_ms, poisoned)
            if not counted.failed:
                return counted
            poisoned.update(counted.failed)

    def _count_pass(
        self,
        partition: int,
        events: Sequence[EventT],
        count: Count,
        arrived_ms: int,
        poisoned: dict[int, str],
    ) -> _Counted:
        ledger = self.kpis.ledger
        out = _Counted()
        ceiling: int | None = None
        for event in events:
            message = event.message
            offset = message.offset
            if ledger.is_applied(partition, offset):
                out.duplicates += 1
                continue
            delta = out.delta
            if delta is None:
                delta = out.delta = Delta(partition, offset, offset, arrived_ms)
            delta.last = offset
            stamped = record_ms(message.timestamp)
            if stamped is not None and (ceiling is None or stamped > ceiling):
                ceiling = stamped
            error = poisoned.get(offset)
            if error is not None:
                out.dead.append((event, error, FailureStage.PROCESS))
                continue
            try:
                at = count(event, delta)
            except Rejected as rejected:
                out.dead.append((event, rejected.error, rejected.stage))
                continue
            except Exception as exc:
                logger.exception(
                    "%s[%d]@%d could not be counted; dead-lettered, and the partition's "
                    "batch is counted again without it",
                    message.topic,
                    partition,
                    offset,
                )
                out.failed[offset] = f"{type(exc).__name__}: {exc}"
                continue
            if at is None:
                out.skipped += 1
                continue
            out.times.append(at)
        if out.delta is not None:
            out.delta.ceiling = arrived_ms if ceiling is None else min(ceiling, arrived_ms)
        return out

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
