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
4. **emit** the alerts to ``fraud-alerts`` (key: user id), without waiting, and take
   each changed user's state, and every few seconds the partition's merchant views and
   detector, as bytes (``FraudPartition.changes``);
5. **finish**, in a task of its own, while the next batches are scored: wait for the
   broker to acknowledge the batch's alerts (an alert the broker refused is sent again
   until it is taken, :data:`RESEND_FIRST_S` to :data:`RESEND_MAX_S` apart), send the
   dead letters, write the state taken in step 4 (one changelog record per changed user),
   hand the batch to the followers, and only then acknowledge its records. Finishes run
   one after another, in batch order; at most :data:`MAX_FINISHING` wait at a time.

Why scoring does not wait for the previous batch's writes: an alert waited for the
broker's answer to its own produce request and to every state write queued before it
(:mod:`tables.store` sends the changelog records through the same producer), and the
next batch waited for both. Pipelined, an alert waits for its own produce request only.

Why that order gives "every fraud alerted, each once". Offsets are committed for
acknowledged records only, and Faust flushes the producer before it commits. A worker
killed before a batch's step 5 wrote its state reprocesses the batch from state that never
saw it (the state of later batches is written after, never before) and raises the same
alerts again (same deterministic ``alert_id``; PostgreSQL keeps one case per transaction).
A worker killed after finds the transactions in each user's ``seen`` ids and skips them,
and their alerts were acknowledged before the state was written. So ``fraud-alerts`` is
at-least-once with stable ids, and cases are exactly-once.

Rules and verdicts reach every worker through ``agents.fraud_control``. Verdicts from
``fraud-feedback`` are applied, during the next batch of each partition, to that
partition's model and rule precision counts, and to the merchant stats of the user's
partition.

Latency (event time to alert acknowledged) is the ``ecap_fraud_alert_latency_seconds``
histogram (``ecap.metrics``) on ``/metrics/`` of the worker's web port.

**Followers.** Other work on the same records joins this agent instead of subscribing
its own: :meth:`TransactionsWorker.follow` adds a coroutine that gets each batch in
step 5, after its state is written, with every record decoded (``None`` for one that is
not a transaction), before the batch is acknowledged. The sales KPIs do so
(``agents.sales_kpis``, joined by ``ecap.faust_app``): Faust hands a record to each
agent of a process separately, and a second agent on ``transactions`` cost a fifth of
the worker's throughput, half of it in decoding every record again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
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
from tables.fraud_partition import FraudPartition, Writes
from tables.user_state import FraudTables

logger = logging.getLogger(__name__)

TAKE_MAX = 2000
"""Most records per batch: large batches amortise the per-batch table writes."""
TAKE_WITHIN_S = 0.02
"""Longest wait for a batch to fill. A batch also ends at the first poll (1 ms) that finds
nothing new (``batches(..., until_idle=True)``): records arrive a fetch at a time, so on a
stream the worker keeps up with a batch is the last fetch, and on a backlog it grows to
TAKE_MAX."""
MAX_FINISHING = 4
"""Batches scored whose finish (step 5) may still be running when the next is scored."""
RESEND_FIRST_S = 0.1
RESEND_MAX_S = 5.0
"""An alert the broker did not take is sent again after these waits (doubling)."""
STOP_FINISH_S = 10.0
"""At shutdown, how long the finishes still running get before they are cancelled (their
batches are then read again after the restart)."""
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
    writes: Writes | None = None


@dataclass(frozen=True)
class _Alert:
    alert: FraudAlert
    features: bytes | None


@dataclass
class _Scored:
    """One batch after steps 1-4, for its finish."""

    events: Sequence[EventT]
    decoded: Decoded
    taken: list[_Batch]
    alerts: list[tuple[_Alert, Awaitable[Any]]]
    dead: list[tuple[EventT, str, FailureStage]]


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
        finishing: deque[asyncio.Task[None]] = deque()
        previous: asyncio.Task[None] | None = None
        try:
            async for events in batches(
                stream, TAKE_MAX, TAKE_WITHIN_S, until_idle=True, ack=False
            ):
                scored = await self.score(events)
                previous = asyncio.ensure_future(self._finish(previous, scored))
                finishing.append(previous)
                while finishing and finishing[0].done():
                    finishing.popleft().result()  # a finish that failed stops the agent
                if len(finishing) > MAX_FINISHING:
                    await finishing.popleft()
        finally:
            await _stop(finishing)

    def follow(self, follower: Follower) -> None:
        """Hand every batch, decoded, to ``follower`` after scoring it."""
        self.followers.append(follower)

    async def process(self, events: Sequence[EventT]) -> Decoded:
        """One batch, steps 1 to 5 (without acknowledging its records). Returns the
        records decoded."""
        scored = await self.score(events)
        await self._complete(scored)
        return scored.decoded

    async def score(self, events: Sequence[EventT]) -> _Scored:
        """Steps 1 to 4: decide everything, send the alerts, take the state to write."""
        decoded: dict[tuple[int, int], Transaction | None] = {}
        grouped = by_partition(events)
        taken: list[_Batch] = []
        alerts: list[_Alert] = []
        dead: list[tuple[EventT, str, FailureStage]] = []
        now_ms = int(time.time() * 1000)
        now = time.monotonic()
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
                batch.writes = part.changes(batch.changed_users, now)
            taken.append(batch)
        sent = [(item, await self._send(item)) for item in alerts]
        return _Scored(events, decoded, taken, sent, dead)

    async def _finish(self, previous: asyncio.Task[None] | None, scored: _Scored) -> None:
        """Step 5 after the previous batch's, then acknowledge the batch's records."""
        if previous is not None:
            await previous
        await self._complete(scored)
        for event in scored.events:
            event.ack()

    async def _complete(self, scored: _Scored) -> None:
        """Step 5: alerts acknowledged, dead letters, state, followers."""
        for item, future in scored.alerts:
            await self._delivered(item, future)
        await send_dead_letters(self.dead_topic, scored.dead, self.worker)
        await self._write(scored.taken)
        for follower in self.followers:
            await follower(scored.events, scored.decoded)
        for batch in scored.taken:
            self.processed[batch.part.partition] = batch.anchor.message.offset

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

    async def _send(self, item: _Alert) -> Awaitable[Any]:
        """Send one alert; returns the future of its acknowledgement."""
        alert = item.alert
        headers = [(FEATURES_HEADER, item.features)] if item.features is not None else None
        return await self.alerts_topic.send(
            key=alert.user_id.encode(), value=encode(alert), headers=headers, force=True
        )

    async def _delivered(self, item: _Alert, future: Awaitable[Any]) -> None:
        """Wait until the broker has the alert, sending it again while it refuses."""
        delay = RESEND_FIRST_S
        while True:
            try:
                await future
                break
            except Exception as exc:  # the broker's answer, whatever it is: send again
                metrics.ALERT_RESENDS.inc()
                logger.error(
                    "alert %s not acknowledged (%s: %s); sending it again in %.1f s",
                    item.alert.alert_id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESEND_MAX_S)
            future = await self._send(item)
        alert = item.alert
        metrics.ALERT_LATENCY.observe(time.time() - alert.event_time.timestamp())
        metrics.ALERTS.labels(alert.priority.value).inc()

    async def _write(self, taken: list[_Batch]) -> None:
        """Each partition's changes taken in step 4."""
        for batch in taken:
            assert batch.writes is not None
            with partition_of(batch.anchor):
                await batch.part.write(self.tables, batch.writes)
            self._scored.inc(batch.scored)
            self._duplicates.inc(batch.duplicates)

    def forget(self, partitions: set[int]) -> None:
        """Drop revoked partitions' detectors; a later assignment reloads them."""
        for partition in partitions:
            self.partitions.pop(partition, None)
            self.processed.pop(partition, None)


async def _stop(finishing: deque[asyncio.Task[None]]) -> None:
    """Let the finishes still running end (for :data:`STOP_FINISH_S` at most), then cancel
    the rest: their records stay unacknowledged and are read again after a restart."""
    if not finishing:
        return
    _, pending = await asyncio.wait(finishing, timeout=STOP_FINISH_S)
    for task in pending:
        task.cancel()
    for task in finishing:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the agent's own error is the one to report


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
