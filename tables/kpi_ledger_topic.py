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
* :meth:`KpiLedger.write` sends a batch's deltas, and folds them locally (visible to
  views at once) when the broker has them;
* :meth:`KpiLedger.tick`, every second: heartbeats for held partitions, the watermark,
  and, in the worker holding input partition 0, the windows due on ``analytics-results``.

**A reset log** (``tables.log_resets``; a restarted embedded broker loses every topic):

* the ledger topic: the reader finds its log shorter than what it had read, or gone. It
  declares the topic again if need be, holds every write of this worker, reads the new
  log to its end and, unless another worker did so first, writes its whole ledger there
  as a snapshot (``ecap.kpis.ledger_reset``), then lets the writes go. A worker that
  starts later loads the first snapshot it meets before it catches up, so the KPIs of
  the old log are kept across a later restart;
* the input topic: before an input partition's first batch after an assignment,
  :meth:`KpiLedger.prepare` compares the input topic's id, and each partition's end, with
  what the ledger's applied offsets refer to. If the log was reset it writes a rebase
  record, which every worker folds at the same point of the ledger: the applied offsets
  are forgotten and the new log's records count from its start, instead of being taken
  for duplicates. A batch taken from the old log and still being written is dropped.

The ledger topic keeps :data:`LEDGER_RETENTION`, more than the windows kept
(``RETAIN_MS``): a worker starting after a longer pause reads less history and starts
afresh for the windows it cannot rebuild.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.types import TP, EventT

from ecap import metrics
from ecap.events import AnalyticsResult, encode, now_utc
from ecap.kafka.log_identity import topic_id
from ecap.kafka.offsets import partition_ranges
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
from ecap.kpis.ledger_reset import (
    REBASE_KEY,
    Rebase,
    SnapshotReader,
    decode_part,
    is_reset_record,
    restore,
    snapshot_records,
)
from ecap.kpis.windows import Window
from ecap.topics import ANALYTICS_RESULTS, BY_NAME
from tables.changelog_reset import declare_again
from tables.log_resets import LogResets

logger = logging.getLogger(__name__)

LEDGER_RETENTION = timedelta(hours=6)
TICK_S = 1.0
RETRY_S = 1.0
PROVISIONAL_S = 5.0
"""How often open tumbling windows are published as provisional results."""
SILENCE_S = 3.0
"""A ledger topic silent this long (heartbeats come every second) is checked for being gone."""
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
        resets: LogResets | None = None,
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
        # A reset log (see the module docstring).
        self.resets = resets if resets is not None else LogResets()
        self.source_id: str | None = None
        """Id of the input topic whose offsets the ledger's applied offsets are."""
        self._seeded = asyncio.Event()
        """Clear while a reset ledger topic is re-seeded: this worker writes nothing."""
        self._seeded.set()
        self._next_offset = 0
        """Ledger offset after the last record read."""
        self._last_read = time.monotonic()
        self._adopt_snapshot = True
        """Until the reader first catches up: load the first snapshot met."""
        self._snapshots = SnapshotReader()
        self._snapshot_in_log = False
        self._reseed: tuple[dict[TopicPartition, int], int, int] | None = None
        """While re-seeding: (ends to read to, offset held before, end found)."""
        self._taking: dict[int, EventT] = {}
        """Input partition -> first record of the batch being taken from it."""
        self._revoked_while_taking: dict[int, EventT] = {}
        """Input partition -> first record of a batch taken before it was revoked."""
        self._stale: set[int] = set()

    @classmethod
    def for_family(
        cls,
        app: faust.App,
        family: str,
        source: str,
        kpis: Family,
        resets: LogResets | None = None,
    ) -> KpiLedger:
        """The ledger of the KPI family ``kpis`` (named ``family``) counted from ``source``;
        log resets it repairs are told to ``resets``."""
        return cls(
            app,
            family=family,
            source=source,
            ledger=kpis.new_ledger(BY_NAME[source].partitions),
            results=kpis.results,
            resets=resets,
        )

    async def _declare(self) -> None:
        await declare_again(self.app, self.topic)

    def _bootstrap(self) -> str:
        return ",".join(f"{url.host}:{url.port}" for url in self.app.conf.broker)

    # ------------------------------------------------------------------ reading

    async def follow(self) -> None:
        """Read the ledger topic from its beginning and fold every record, forever (after
        an error, again from the beginning: what is already folded is skipped)."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise
                # aiokafka lets a cancellation of its own escape when its broker goes away.
                logger.warning("%s: the ledger reader lost its broker; reading again", self.family)
                await asyncio.sleep(RETRY_S)
            except Exception:
                logger.exception("%s: reading the ledger failed; reading again", self.topic_name)
                await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        await self._declare()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap(),
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
            if ends[self._ledger_tp] < self._next_offset:
                await self._ledger_reset(consumer, ends[self._ledger_tp])
            self._next_offset = 0
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.offset < self._next_offset:
                            await self._ledger_reset(consumer, record.offset)
                            break
                        self._next_offset = record.offset + 1
                        self._last_read = time.monotonic()
                        self._fold(record.key, record.value)
                await self._check_ledger_log(consumer)
                if self._reseed is not None and await _reached(consumer, self._reseed[0]):
                    await self._write_snapshot()
                if not self.caught_up.is_set() and await _reached(consumer, ends):
                    self._adopt_snapshot = False
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
        if key is not None and is_reset_record(key):
            self._fold_reset_record(key, value or b"")
            return
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

    async def prepare(self, batch: Mapping[int, Sequence[EventT]]) -> None:
        """Wait until the ledger holds everything written for newly held partitions, and
        rebase it if their input log was reset (see the module docstring). ``batch`` maps
        each input partition to its records."""
        self._stale = {p for p, events in batch.items() if self._taken_before_revoked(p, events)}
        pending = [p for p in batch if p not in self._ready]
        if not pending:
            return
        await self._seeded.wait()
        while self._consumer is None:
            await asyncio.sleep(0.05)
        consumer = self._consumer
        ends = await consumer.end_offsets([self._ledger_tp])
        async with self._progress:
            while self._consumer is consumer and not await _reached(consumer, ends):
                await self._progress.wait()
        await self._rebase_if_reset(pending)
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
            taking = self._taking.pop(partition, None)
            if taking is not None:
                self._revoked_while_taking[partition] = taking
            self._ready.discard(partition)
            self._arrived.pop(partition, None)

    # ------------------------------------------------------------------ writing

    async def write(self, deltas: list[Delta]) -> None:
        """Send a batch's deltas as one record, wait for the broker to acknowledge it, then
        fold them into the local ledger. A write that raises has folded nothing, so the
        caller can count the batch again and write it again (``agents.kpi_batches``)."""
        await self._seeded.wait()
        if self._stale:
            logger.warning(
                "%s: a batch of partitions %s was taken before the partitions were revoked "
                "(a broker restart, a rebalance); dropped: its records are read again from "
                "the committed offsets, or were lost with the old log",
                self.family,
                sorted(self._stale),
            )
            deltas = [d for d in deltas if d.partition not in self._stale]
        fresh = [d for d in deltas if not self.ledger.is_applied(d.partition, d.last)]
        if fresh:
            key, value = encode_deltas(fresh)
            await (await self.topic.send(key=key, value=value, partition=0))
        for delta in deltas:
            self._arrived[delta.partition] = delta.arrived_ms
            self.ledger.apply(delta)

    # ------------------------------------------------------------------ a reset log

    async def _check_ledger_log(self, consumer: AIOKafkaConsumer) -> None:
        """Is the ledger topic shorter than what was read, or gone? Then re-seed it."""
        highwater = consumer.highwater(self._ledger_tp)
        if highwater is not None and highwater < self._next_offset:
            await self._ledger_reset(consumer, highwater)
            return
        if time.monotonic() - self._last_read < SILENCE_S:
            return
        self._last_read = time.monotonic()
        if self.topic_name not in await consumer.topics():
            await self._ledger_reset(consumer, 0)

    async def _ledger_reset(self, consumer: AIOKafkaConsumer, end: int) -> None:
        """Hold this worker's writes and read the new ledger log from its start; the
        snapshot follows once it is read (:meth:`_write_snapshot`)."""
        self._seeded.clear()
        self._ready.clear()
        self._adopt_snapshot = False
        self._snapshot_in_log = False
        await self._declare()
        await consumer.seek_to_beginning(self._ledger_tp)
        found = await asyncio.to_thread(partition_ranges, self._bootstrap(), [self.topic_name])
        ends = {self._ledger_tp: found.get((self.topic_name, 0), (0, 0))[1]}
        self._reseed = (ends, self._next_offset - 1, end)
        self._next_offset = 0

    async def _write_snapshot(self) -> None:
        """The new ledger log is read: write this worker's ledger at its start (unless
        another worker did), then let the writes go."""
        assert self._reseed is not None
        _, held, end = self._reseed
        if self._snapshot_in_log:
            action = "another worker re-seeded the ledger topic; this worker's ledger is kept"
        else:
            records = snapshot_records(self.ledger, self.source_id, uuid.uuid4().hex)
            for key, value in records:
                await (await self.topic.send(key=key, value=value, partition=0))
            action = (
                f"ledger topic re-seeded with this worker's ledger ({len(records)} snapshot "
                f"records, input offsets {dict(sorted(self.ledger.applied.items()))})"
            )
        self._reseed = None
        self.resets.record(self.topic_name, {0: (held, end)}, action)
        self._seeded.set()

    def _fold_reset_record(self, key: bytes, value: bytes) -> None:
        try:
            if key == REBASE_KEY:
                rebase = Rebase.decode(value)
                rebased = self.ledger.rebase(rebase.held)
                if rebase.source_id is not None:
                    self.source_id = rebase.source_id
                if rebased:
                    logger.info("%s: input partitions %s rebased", self.family, rebased)
                return
            self._snapshot_in_log = True
            if not self._adopt_snapshot:
                return
            body = self._snapshots.offer(decode_part(value))
            if body is not None:
                self.source_id = restore(self.ledger, body)
                self._adopt_snapshot = False
                logger.info(
                    "%s: ledger loaded from a snapshot at input offsets %s",
                    self.family,
                    dict(sorted(self.ledger.applied.items())),
                )
        except (ValueError, KeyError, TypeError) as exc:
            logger.error("%s: unreadable %r record skipped: %s", self.topic_name, key, exc)

    async def _rebase_if_reset(self, pending: list[int]) -> None:
        """Before counting newly held partitions: was the input log reset under the
        ledger's applied offsets? Then write a rebase and wait until it is folded."""
        bootstrap = self._bootstrap()
        current = await asyncio.to_thread(topic_id, bootstrap, self.source)
        ranges = await asyncio.to_thread(partition_ranges, bootstrap, [self.source])
        ends = {partition: end for (_, partition), (_, end) in ranges.items()}
        applied = self.ledger.applied
        if current is not None and self.source_id is not None and current != self.source_id:
            held = dict(applied)
        else:
            held = {p: applied[p] for p in pending if p in applied and applied[p] >= ends.get(p, 0)}
        if not held and (current is None or current == self.source_id):
            return
        key, value = Rebase(held, ends, current).encode()
        written = await (await self.topic.send(key=key, value=value, partition=0))
        async with self._progress:
            while self._next_offset <= written.offset:
                await self._progress.wait()
        self.resets.record(
            self.source,
            {p: (offset, ends.get(p, 0)) for p, offset in held.items()},
            f"{self.family} KPI ledger rebased onto the new log: its records count from "
            "the log's start",
        )

    def _taken_before_revoked(self, partition: int, events: Sequence[EventT]) -> bool:
        """Were ``events`` taken before ``partition`` was last revoked? A batch still being
        written through a broker restart holds records of the old log: counted under the
        rebased offsets, they would make the new log's first records duplicates. Dropping
        such a batch loses nothing a broker kept: its records are read again from the
        committed offsets by whoever holds the partition now."""
        if not events:
            return False
        first = events[0]
        if first is self._revoked_while_taking.get(partition):
            return True
        self._revoked_while_taking.pop(partition, None)
        self._taking[partition] = first
        return False

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
