"""The KPI ledger topics: how a worker writes its partitions' deltas and folds everyone's.

A KPI family (sales in the transactions worker, clickstream in the user-events worker)
keeps its windows in a :class:`~ecap.kpis.ledger.Ledger` instead of a Faust table (see
that module for why). This module is its Kafka side, for one worker process:

* the ledger topic ``<app id>-<family>-ledger``, one partition: each batch's deltas go
  as one record, and each worker's heartbeats as one record a second. One partition keeps
  every input partition's deltas in the order they were written; a ledger record per
  batch (not per input partition) keeps their number small when batches are small;
* :meth:`KpiLedger.follow` reads the whole topic from the beginning, in every worker,
  and folds each record into the worker's ledger (its own deltas, already folded when
  written, are skipped by the offsets in the record key without being decoded);
* :meth:`KpiLedger.prepare` holds an input partition's first batch after an assignment
  until the ledger topic has been read to its end, so a new owner continues from what the
  previous owner wrote (Faust flushes the producer before giving partitions up);
* :meth:`KpiLedger.write` folds a batch's deltas locally (visible to views at once) and
  sends them;
* :meth:`KpiLedger.tick`, every second: heartbeats for held partitions, the watermark,
  and, in the worker holding input partition 0, the windows due on ``analytics-results``.

The ledger topic keeps :data:`LEDGER_RETENTION`, more than the windows kept
(``RETAIN_MS``): a worker starting after a longer pause reads less history and starts
afresh for the windows it cannot rebuild.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.types import TP

from ecap import metrics
from ecap.events import AnalyticsResult, encode, now_utc
from ecap.kpis.ledger import (
    Delta,
    Heartbeat,
    Ledger,
    Publisher,
    decode_record,
    encode_deltas,
    encode_heartbeats,
    offsets_of,
)
from ecap.kpis.windows import Window
from ecap.topics import ANALYTICS_RESULTS, BY_NAME

logger = logging.getLogger(__name__)

LEDGER_RETENTION = timedelta(hours=6)
TICK_S = 1.0
RETRY_S = 1.0
PROVISIONAL_S = 5.0
"""How often open tumbling windows are published as provisional results."""
FETCH_MAX_WAIT_MS = 20
"""How long the ledger reader waits for more records: the delay before a worker sees
another worker's partitions change."""

Results = Callable[[Ledger, Window], list[tuple[str, str, str, float]]]


class Family(Protocol):
    """A KPI family's pure module (``ecap.kpis.sales``, ``ecap.kpis.clickstream``)."""

    def new_ledger(self, partitions: int) -> Ledger: ...

    def results(self, ledger: Ledger, window: Window) -> list[tuple[str, str, str, float]]: ...


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class KpiLedger:
    """One worker's KPI ledger for one family (see the module docstring)."""

    def __init__(
        self,
        app: faust.App,
        *,
        family: str,
        source: str,
        ledger: Ledger,
        results: Results,
    ) -> None:
        self.app = app
        self.family = family
        self.source = source
        self.ledger = ledger
        self.results = results
        self.topic_name = f"{app.conf.id}-{family}-ledger"
        self._ledger_tp = TopicPartition(self.topic_name, 0)
        self.topic = app.topic(
            self.topic_name,
            partitions=1,
            internal=True,
            retention=LEDGER_RETENTION,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.results_topic = app.topic(
            ANALYTICS_RESULTS, key_serializer="raw", value_serializer="raw"
        )
        self.publisher = Publisher()
        self.caught_up = asyncio.Event()
        """Set once the ledger topic has been read to the end it had at start."""
        self._consumer: AIOKafkaConsumer | None = None
        self._progress = asyncio.Condition()
        self._ready: set[int] = set()
        self._arrived: dict[int, int] = {}
        self._last_provisional = 0.0

    @classmethod
    def for_family(cls, app: faust.App, family: str, source: str, kpis: Family) -> KpiLedger:
        """The ledger of the KPI family ``kpis`` (named ``family``) counted from ``source``."""
        return cls(
            app,
            family=family,
            source=source,
            ledger=kpis.new_ledger(BY_NAME[source].partitions),
            results=kpis.results,
        )

    # ------------------------------------------------------------------ reading

    async def follow(self) -> None:
        """Read the ledger topic from its beginning and fold every record, forever (after
        an error, again from the beginning: what is already folded is skipped)."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: reading the ledger failed; reading again", self.topic_name)
                await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        await self.topic.declare()
        bootstrap = ",".join(f"{url.host}:{url.port}" for url in self.app.conf.broker)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=f"{self.app.conf.id}-{self.family}-ledger-reader",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        self._consumer = consumer
        try:
            partitions = [self._ledger_tp]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self._fold(record.key, record.value)
                if not self.caught_up.is_set() and await _reached(consumer, ends):
                    self.caught_up.set()
                    logger.info(
                        "%s ledger read: %d partitions at offsets %s",
                        self.family,
                        len(self.ledger.applied),
                        dict(sorted(self.ledger.applied.items())),
                    )
                async with self._progress:
                    self._progress.notify_all()
        finally:
            self._consumer = None
            await consumer.stop()

    def _fold(self, key: bytes | None, value: bytes | None) -> None:
        covered = offsets_of(key)
        if covered is not None and all(self.ledger.is_applied(p, last) for p, _, last in covered):
            return
        try:
            records = decode_record(key, value)
        except (ValueError, KeyError, TypeError) as exc:
            logger.error("%s: unreadable ledger record %r skipped: %s", self.topic_name, key, exc)
            return
        for record in records:
            if isinstance(record, Delta):
                self.ledger.apply(record)
            else:
                self.ledger.apply_heartbeat(record)

    async def prepare(self, partitions: Iterable[int]) -> None:
        """Wait until the ledger holds everything written for newly held partitions."""
        pending = [p for p in partitions if p not in self._ready]
        if not pending:
            return
        while self._consumer is None:
            await asyncio.sleep(0.05)
        consumer = self._consumer
        ends = await consumer.end_offsets([self._ledger_tp])
        async with self._progress:
            while self._consumer is consumer and not await _reached(consumer, ends):
                await self._progress.wait()
        self._ready.update(pending)
        logger.info(
            "%s: partitions %s ready at input offsets %s",
            self.family,
            pending,
            {p: self.ledger.applied.get(p) for p in pending},
        )

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: prepare them again if they come back."""
        for partition in partitions:
            self._ready.discard(partition)
            self._arrived.pop(partition, None)

    # ------------------------------------------------------------------ writing

    async def write(self, deltas: list[Delta]) -> None:
        """Fold a batch's deltas into the local ledger and send them as one record."""
        fresh = []
        for delta in deltas:
            self._arrived[delta.partition] = delta.arrived_ms
            if self.ledger.apply(delta):
                fresh.append(delta)
        if fresh:
            key, value = encode_deltas(fresh)
            await self.topic.send(key=key, value=value, partition=0)

    def held(self) -> list[int]:
        return sorted(
            tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.source
        )

    async def tick(self) -> None:
        """Heartbeats, watermark, and publishing (see the module docstring)."""
        try:
            await self._tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: the KPI timer failed; it runs again in %s s", self.family, TICK_S)

    async def _tick(self) -> None:
        held = self.held()
        beats = [Heartbeat(p, self._caught_up(p), self._arrived.get(p)) for p in held]
        for beat in beats:
            self.ledger.apply_heartbeat(beat)
        if beats:
            key, value = encode_heartbeats(beats)
            await self.topic.send(key=key, value=value, partition=0)
        now_ms = int(time.time() * 1000)
        watermark = self.ledger.advance(now_ms)
        if watermark is not None:
            metrics.WATERMARK_DELAY.labels(self.family).set(max(0.0, now_ms - watermark) / 1000)
        if 0 in held and self.caught_up.is_set():
            await self.publish()

    def _caught_up(self, partition: int) -> bool:
        tp = TP(self.source, partition)
        highwater = self.app.consumer.highwater(tp)
        if highwater is None:
            return False
        lag = max(0, highwater - (self.ledger.applied.get(partition, -1) + 1))
        metrics.CONSUMER_LAG.labels(self.source, str(partition)).set(lag)
        return lag == 0

    async def publish(self) -> None:
        """Send the windows that closed or changed since they were last sent."""
        now = time.monotonic()
        provisional = now - self._last_provisional >= PROVISIONAL_S
        if provisional:
            self._last_provisional = now
        computed_at = now_utc()
        sent = 0
        for window, final in self.publisher.due(self.ledger, provisional):
            start, end = ms_to_datetime(window.start_ms), ms_to_datetime(window.end_ms)
            late = self.ledger.late.get(window, 0)
            for metric, dim, value, number in self.results(self.ledger, window):
                result = AnalyticsResult(
                    metric=metric,
                    window=window.kind,
                    window_start=start,
                    window_end=end,
                    dimension=dim,
                    dimension_value=value[:100],
                    value=number,
                    final=final,
                    late_events=late,
                    computed_at=computed_at,
                )
                await self.results_topic.send(key=metric.encode(), value=encode(result))
                sent += 1
        if sent:
            metrics.RESULTS_PUBLISHED.labels(self.family).inc(sent)


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def on_revoked(kpis: KpiLedger, revoked: Iterable[TP]) -> None:
    kpis.forget(tp.partition for tp in revoked if tp.topic == kpis.source)
