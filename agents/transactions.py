"""``ecap worker transactions``: score every transaction and alert on fraud, in under a second.

The agent is a thin loop over batches (``ecap.kafka.batches``: up to :data:`TAKE_MAX`
records, at most :data:`TAKE_WITHIN_S` after the first), one partition at a time:

1. **decode** each record; one that does not parse or validate goes to
   ``transactions.dlq`` with its bytes, the error and the stage, and the loop goes on; so
   does one whose event time is implausible for its record timestamp (stage
   ``validate``, :mod:`ecap.event_time`), before it can become a user's "last
   transaction" in the fraud state;
2. **state**: the user's :class:`~ecap.fraud.state.UserState` and the partition's view
   of the merchant come from the tables the first time the partition meets them, then
   from memory (``tables.fraud_partition``);
3. **decide**: ``Detector.process`` de-duplicates by transaction id, scores rules,
   z-score, model and merchant risk, and updates the state in memory; an exception here
   dead-letters the record with stage ``process``;
4. **emit** the alerts to ``fraud-alerts`` (key: user id) and *wait for the broker to
   acknowledge them*, and only then
5. **write** each changed user's state once per batch (one changelog record each), and
   every few seconds the partition's merchant views and detector.

Why that order gives "every fraud alerted, each once". Offsets are committed after the
batch, and Faust flushes the producer before it commits. A worker killed before step 5
reprocesses the batch from state that never saw it and raises the same alerts again
(same deterministic ``alert_id``; PostgreSQL keeps one case per transaction). A worker
killed after step 5 finds the transactions in each user's ``seen`` ids and skips them,
and their alerts were already acknowledged in step 4. So ``fraud-alerts`` is
at-least-once with stable ids, and cases are exactly-once.

Rules and verdicts reach every worker through ``agents.fraud_control``. Verdicts from
``fraud-feedback`` are applied, during the next batch of each partition, to that
partition's model and rule precision counts, and to the merchant stats of the user's
partition.

Latency (event time to alert acknowledged) is the ``ecap_fraud_alert_latency_seconds``
histogram (``ecap.metrics``) on ``/metrics/`` of the worker's web port.

**Followers.** Other work on the same records joins this agent instead of subscribing
its own: :meth:`TransactionsWorker.follow` adds a coroutine that gets each batch after
step 5, with every record decoded (``None`` for one that is not a transaction), before
the batch is acknowledged. The sales KPIs do so (``agents.sales_kpis``, joined by
``ecap.faust_app``): Faust hands a record to each agent of a process separately, and a
second agent on ``transactions`` cost a fifth of the worker's throughput, half of it in
decoding every record again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from aiokafka import ConsumerRecord
from faust.types import TP, EventT
from mode.types.signals import BaseSignalT

from agents.fraud_control import FraudControl
from ecap import metrics
from ecap.deadletter import send_dead_letters
from ecap.event_time import Bounds, EventTimeError, record_ms
from ecap.events import (
    FEATURES_HEADER,
    EventError,
    FailureStage,
    FraudAlert,
    Transaction,
    decode,
    encode,
    now_utc,
)
from ecap.fraud.detector import to_alert
from ecap.fraud.rule_records import SigningKey
from ecap.fraud.rules import RuleSet
from ecap.kafka.batches import batches, by_partition
from ecap.patches.faust_batch_context import partition_of
from ecap.settings import get_settings
from ecap.topics import FRAUD_ALERTS, FRAUD_FEEDBACK, FRAUD_RULES, TRANSACTIONS, dlq
from tables import user_state as tables
from tables.fraud_partition import FraudPartition
from tables.user_state import FraudTables

logger = logging.getLogger(__name__)

TAKE_MAX = 2000
"""Most records per batch: large batches amortise the per-batch table writes."""
TAKE_WITHIN_S = 0.02
"""Longest wait for a batch to fill. A batch also ends at the first poll (1 ms) that finds
nothing new (``batches(..., until_idle=True)``): records arrive a fetch at a time, so on a
stream the worker keeps up with a batch is the last fetch, and on a backlog it grows to
TAKE_MAX."""
CONTROL_WAIT_S = 30.0
"""How long the agent waits at start for the rule set and verdicts to be read."""
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024
"""Producer request limit: a dead letter carries its record base64-encoded (4/3 larger)."""
FAILURE_TRACE_EVERY_S = 60.0
"""A scoring failure logs its traceback at most this often per exception type."""
PRODUCER_BUFFER_MESSAGES = 4 * TAKE_MAX
"""Records Faust's producer buffer may hold unsent before it makes the stream wait (alerts
and dead letters go through it; state writes go straight to the producer, see
``tables.store``)."""
PRODUCER_BATCH_BYTES = 1024 * 1024
"""Producer batch per partition: the embedded broker takes ~10 ms per produce request, so
Faust's default 16 KB batches cap a worker at a few thousand changelog records a second."""


Decoded = Mapping[tuple[int, int], Transaction | None]
"""(partition, offset) -> the batch's record decoded, or None if it is not a transaction."""
Follower = Callable[[Sequence[EventT], Decoded], Awaitable[None]]
"""Gets every batch after the fraud agent is done with it (see "Followers" above)."""


@dataclass
class _Batch:
    """What one partition's records changed in the current batch."""

    anchor: EventT
    part: FraudPartition
    changed_users: set[bytes] = field(default_factory=set)
    scored: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class _Alert:
    alert: FraudAlert
    features: bytes | None


class TransactionsWorker:
    """The transactions agent's batch step (see the module docstring)."""

    def __init__(
        self,
        app: faust.App,
        fraud_tables: FraudTables,
        worker: str,
        bootstrap: str,
        signing_key: SigningKey,
    ) -> None:
        self.tables = fraud_tables
        self.worker = worker
        self.alerts_topic = app.topic(FRAUD_ALERTS, key_serializer="raw", value_serializer="raw")
        self.dead_topic = app.topic(dlq(TRANSACTIONS), key_serializer="raw", value_serializer="raw")
        self.partitions: dict[int, FraudPartition] = {}
        self.processed: dict[int, int] = {}
        """Partition -> offset of the last transaction record processed (and written)."""
        self.control = FraudControl(bootstrap, worker, self._use_ruleset, signing_key)
        self._traced: dict[str, float] = {}
        self.bounds = Bounds.from_settings(get_settings())
        self.followers: list[Follower] = []
        self._scored = metrics.FRAUD_DECISIONS.labels("scored")
        self._duplicates = metrics.FRAUD_DECISIONS.labels("duplicate")

    @property
    def ruleset(self) -> RuleSet:
        """The rule set in use (the control topics' latest valid one)."""
        return self.control.ruleset

    def on_control(self, record: ConsumerRecord[bytes, bytes], caught_up: bool) -> None:
        """A record of ``fraud-rules`` or ``fraud-feedback`` (``agents.fraud_control``)."""
        self.control.on_record(record, caught_up)

    def _use_ruleset(self, ruleset: RuleSet) -> None:
        for part in self.partitions.values():
            part.detector.set_ruleset(ruleset)

    # ------------------------------------------------------------------ the agent

    async def consume(self, stream: faust.StreamT[bytes]) -> None:
        """The agent body: wait for the control topics, then process batches forever."""
        try:
            await asyncio.wait_for(self.control.caught_up.wait(), CONTROL_WAIT_S)
        except TimeoutError:
            logger.warning(
                "%s and %s not read within %.0f s; starting with rule set version %d",
                FRAUD_RULES,
                FRAUD_FEEDBACK,
                CONTROL_WAIT_S,
                self.ruleset.version,
            )
        logger.info("scoring with rule set version %d", self.ruleset.version)
        async for events in batches(stream, TAKE_MAX, TAKE_WITHIN_S, until_idle=True):
            decoded = await self.process(events)
            for follower in self.followers:
                await follower(events, decoded)

    def follow(self, follower: Follower) -> None:
        """Hand every batch, decoded, to ``follower`` after scoring it."""
        self.followers.append(follower)

    async def process(self, events: Sequence[EventT]) -> Decoded:
        """One batch: decide everything, emit alerts (acknowledged), then write state.
        Returns the records decoded, for the followers."""
        decoded: dict[tuple[int, int], Transaction | None] = {}
        grouped = by_partition(events)
        taken: list[_Batch] = []
        alerts: list[_Alert] = []
        dead: list[tuple[EventT, str, FailureStage]] = []
        now_ms = int(time.time() * 1000)
        for partition, partition_events in grouped.items():
            with partition_of(partition_events[-1]):
                part = self._partition(partition)
                batch = _Batch(partition_events[-1], part)
                part.learn(self.control.verdicts, self.tables)
                for event in partition_events:
                    message = event.message
                    decoded[partition, message.offset] = self._score(
                        event, part, batch, alerts, dead, now_ms
                    )
            taken.append(batch)
        await send_dead_letters(self.dead_topic, dead, self.worker)
        await self._emit(alerts)
        await self._write(taken)
        for partition, partition_events in grouped.items():
            self.processed[partition] = partition_events[-1].message.offset
        return decoded

    # ------------------------------------------------------------------ steps

    def _partition(self, partition: int) -> FraudPartition:
        part = self.partitions.get(partition)
        if part is None:
            part = FraudPartition.load(self.tables, partition, self.ruleset)
            self.partitions[partition] = part
        return part

    def _score(
        self,
        event: EventT,
        part: FraudPartition,
        batch: _Batch,
        alerts: list[_Alert],
        dead: list[tuple[EventT, str, FailureStage]],
        now_ms: int,
    ) -> Transaction | None:
        """Decide on one record; returns it decoded (None: not a transaction, or not one
        to count: its event time is out of bounds)."""
        try:
            tx = decode(Transaction, event.value)
            self.bounds.check_time(tx.event_time, record_ms(event.message.timestamp), now_ms)
        except EventTimeError as exc:
            metrics.EVENT_TIME_REJECTED.labels(TRANSACTIONS, exc.bound.value).inc()
            dead.append((event, str(exc), exc.stage))
            return None
        except EventError as exc:
            dead.append((event, str(exc), exc.stage))
            return None
        try:
            user = tables.user_key(tx.user_id)
            merchant = tables.merchant_key(part.partition, tx.merchant_id)
            decision = part.detector.process(
                tx, part.user(self.tables, user), part.merchant(self.tables, merchant)
            )
            if decision is None:
                batch.duplicates += 1
                return tx
            batch.changed_users.add(user)
            part.changed_merchants.add(merchant)
            part.learned_since_persist = True
            if decision.fired:
                features = orjson.dumps(decision.features) if decision.features else None
                alerts.append(_Alert(to_alert(tx, decision, now_utc()), features))
            batch.scored += 1
        except Exception as exc:
            self._log_failure(tx.transaction_id, exc)
            dead.append((event, f"{type(exc).__name__}: {exc}", FailureStage.PROCESS))
        return tx

    def _log_failure(self, transaction_id: str, exc: Exception) -> None:
        """Log a scoring failure; the traceback once a minute per exception type."""
        kind = type(exc).__name__
        now = time.monotonic()
        if now - self._traced.get(kind, -FAILURE_TRACE_EVERY_S) >= FAILURE_TRACE_EVERY_S:
            self._traced[kind] = now
            logger.exception("transaction %s could not be scored", transaction_id)
        else:
            logger.error("transaction %s could not be scored: %s: %s", transaction_id, kind, exc)

    async def _emit(self, alerts: list[_Alert]) -> None:
        """Send the batch's alerts and wait until the broker has them all."""
        pending = []
        for item in alerts:
            alert = item.alert
            headers = [(FEATURES_HEADER, item.features)] if item.features is not None else None
            pending.append(
                await self.alerts_topic.send(
                    key=alert.user_id.encode(), value=encode(alert), headers=headers, force=True
                )
            )
        for item, future in zip(alerts, pending, strict=True):
            await future
            alert = item.alert
            metrics.ALERT_LATENCY.observe(time.time() - alert.event_time.timestamp())
            metrics.ALERTS.labels(alert.priority.value).inc()

    async def _write(self, taken: list[_Batch]) -> None:
        """Each partition's changed users, and its merchant views and detector when due."""
        now = time.monotonic()
        for batch in taken:
            with partition_of(batch.anchor):
                await batch.part.write(self.tables, batch.changed_users, now)
            self._scored.inc(batch.scored)
            self._duplicates.inc(batch.duplicates)

    def forget(self, partitions: set[int]) -> None:
        """Drop revoked partitions' detectors; a later assignment reloads them."""
        for partition in partitions:
            self.partitions.pop(partition, None)
            self.processed.pop(partition, None)


def _bootstrap(app: faust.App) -> str:
    return ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)


def build(
    app: faust.App, worker_id: str, fraud_tables: FraudTables, signing_key: SigningKey
) -> TransactionsWorker:
    """Add the transactions agent over ``fraud_tables`` and the control-topic reader,
    which accepts rule sets signed with ``signing_key``."""
    # A dead letter is its record base64-encoded plus metadata; without a larger request
    # limit a record near the broker's 1 MB limit could not be dead-lettered whole.
    app.conf.producer_max_request_size = DEAD_LETTER_MAX_BYTES
    app.conf.producer_max_batch_size = PRODUCER_BATCH_BYTES
    # A batch can send hundreds of alerts or dead letters at once; at Faust's default (100)
    # every incoming record would wait for the buffer to drain, one record at a time.
    app.producer.buffer.max_messages = PRODUCER_BUFFER_MESSAGES  # creates the producer: last
    worker = TransactionsWorker(app, fraud_tables, worker_id, _bootstrap(app), signing_key)
    source = app.topic(TRANSACTIONS, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="fraud-transactions")
    async def score_transactions(stream: faust.StreamT[bytes]) -> None:
        await worker.consume(stream)

    @app.task
    async def follow_rules_and_verdicts() -> None:
        await worker.control.run()

    @app.on_partitions_revoked.connect
    def on_revoked(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        revoked: set[TP] = args[0]
        worker.forget({tp.partition for tp in revoked if tp.topic == TRANSACTIONS})

    return worker
