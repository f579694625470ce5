"""``ecap worker transactions``: score every transaction and alert on fraud, in under a second.

The agent is a thin loop over batches (``ecap.kafka.batches``: up to :data:`TAKE_MAX`
records, at most :data:`TAKE_WITHIN_S` after the first), one partition at a time:

1. **decode** each record; one that does not parse or validate goes to
   ``transactions.dlq`` with its bytes, the error and the stage, and the loop goes on;
2. **state**: the user's :class:`~ecap.fraud.state.UserState` and the partition's view
   of the merchant come from the tables (``tables.user_state``) the first time the
   partition meets them, then from memory;
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

Rules and verdicts reach every worker through :class:`~ecap.kafka.broadcast.BroadcastReader`
(no consumer group): a valid rule set on ``fraud-rules`` replaces the running one at
once, an invalid one is logged and ignored. Verdicts from ``fraud-feedback`` are applied,
during the next batch of each partition, to that partition's model and rule precision
counts, and to the merchant stats of the user's partition.

Latency (event time to alert acknowledged) is the ``ecap_fraud_alert_latency_seconds``
histogram on ``/metrics/`` of the worker's web port.

**Followers.** Other work on the same records joins this agent instead of subscribing
its own: :meth:`TransactionsWorker.follow` adds a coroutine that gets each batch after
step 5, with every record decoded (``None`` for one that is not a transaction), before
the batch is acknowledged. The sales KPIs do so (``agents.sales_kpis``): Faust hands a
record to each agent of a process separately, and a second agent on ``transactions``
cost a fifth of the worker's throughput, half of it in decoding every record again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from aiokafka import ConsumerRecord
from aiokafka.partitioner import murmur2
from faust.types import TP, EventT
from faust.web import Request, Response, View
from mode.types.signals import BaseSignalT
from prometheus_client import Counter, Gauge, Histogram, generate_latest

from ecap import metrics
from ecap.deadletter import send_dead_letters, worker_id
from ecap.events import (
    FEATURES_HEADER,
    EventError,
    FailureStage,
    FraudAlert,
    FraudFeedback,
    Transaction,
    decode,
    encode,
    now_utc,
)
from ecap.faust_app import WorkerSpec
from ecap.fraud.detector import Detector, RulePrecision, to_alert
from ecap.fraud.features import Features
from ecap.fraud.merchant import MerchantStats
from ecap.fraud.model import AnomalyModel
from ecap.fraud.rules import RuleSet, load_default_rules
from ecap.fraud.state import UserState
from ecap.fraudops import rulebook
from ecap.kafka import faust_fastpath
from ecap.kafka.batches import batches
from ecap.kafka.broadcast import BroadcastReader
from ecap.topics import FRAUD_ALERTS, FRAUD_FEEDBACK, FRAUD_RULES, TRANSACTIONS, dlq
from tables import user_state as tables
from tables.user_state import DetectorRecord, FraudTables, partition_of

logger = logging.getLogger(__name__)

TAKE_MAX = 2000
"""Most records per batch: large batches amortise the per-batch table writes."""
TAKE_WITHIN_S = 0.02
"""Longest wait for a batch to fill. A batch also ends at the first poll (1 ms) that finds
nothing new (``batches(..., until_idle=True)``): records arrive a fetch at a time, so on a
stream the worker keeps up with a batch is the last fetch, and on a backlog it grows to
TAKE_MAX. Measured at 1,000 tx/s (bench/stream_fraud.py), event to alert created p50:
52 ms with a fixed 20 ms wait, 38 ms ending at the first idle poll."""
USERS_CACHED_PER_PARTITION = 20_000
"""Decoded user states kept in memory per partition (least recently used evicted)."""
CONTROL_WAIT_S = 30.0
"""How long the agent waits at start for the rule set and verdicts to be read."""
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024
"""Producer request limit: a dead letter carries its record base64-encoded (4/3 larger)."""
FAILURE_TRACE_EVERY_S = 60.0
"""A scoring failure logs its traceback at most this often per exception type."""
METRICS_PATH = "/metrics/"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"
"""Prometheus text format (aiohttp sets the charset itself)."""
PRODUCER_BUFFER_MESSAGES = 4 * TAKE_MAX
"""Records Faust's producer buffer may hold unsent before it makes the stream wait (alerts
and dead letters go through it; state writes go straight to the producer, see
``tables.user_state.write_many``)."""
PRODUCER_BATCH_BYTES = 1024 * 1024
"""Producer batch per partition: the embedded broker takes ~10 ms per produce request, so
Faust's default 16 KB batches cap a worker at a few thousand changelog records a second."""

ALERT_LATENCY = Histogram(
    "ecap_fraud_alert_latency_seconds",
    "Event time of a transaction to its alert acknowledged by the broker.",
    buckets=metrics.LATENCY_BUCKETS,
)
DECISIONS = Counter(
    "ecap_fraud_decisions_total",
    "Transactions the fraud agent decided on (scored) or skipped as already seen (duplicate).",
    ["outcome"],
)
RULESET_VERSION = Gauge("ecap_fraud_ruleset_version", "Version of the rule set in use.")
VERDICTS = Counter("ecap_fraud_verdicts_learned_total", "Verdicts learned by a partition.")


def partition_for(user_id: str, partitions: int = tables.PARTITIONS) -> int:
    """The ``transactions`` partition of a user (Kafka's default murmur2 partitioner)."""
    return (murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions


Decoded = Mapping[tuple[int, int], Transaction | None]
"""(partition, offset) -> the batch's record decoded, or None if it is not a transaction."""
Follower = Callable[[Sequence[EventT], Decoded], Awaitable[None]]
"""Gets every batch after the fraud agent is done with it (see "Followers" above)."""


@dataclass
class _Partition:
    """One assigned partition's detector and what it has learned from verdicts."""

    detector: Detector
    feedback_applied: dict[int, int]
    feedback_seen: int = 0
    """Index into the worker's verdict list up to which this partition has looked."""
    users: OrderedDict[bytes, UserState] = field(default_factory=OrderedDict)
    """Recently used users' states, least recent first: a user who comes back is not read
    from RocksDB and decoded again. Only this worker writes them while it holds the
    partition, so the copies stay exact; they go with the partition."""
    merchants: dict[bytes, MerchantStats] = field(default_factory=dict)
    changed_merchants: set[bytes] = field(default_factory=set)
    """Merchant views changed since they were last written (with the detector)."""
    learned_since_persist: bool = False
    persist_now: bool = False
    last_persist: float = float("-inf")
    """Never: a new partition writes its detector with its first batch."""

    def record(self) -> DetectorRecord:
        return DetectorRecord(
            self.detector.model, self.detector.rule_precision, dict(self.feedback_applied)
        )


@dataclass
class _Batch:
    """What one partition's records changed in the current batch."""

    partition: int
    anchor: EventT
    part: _Partition
    changed_users: set[bytes] = field(default_factory=set)
    scored: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class _Alert:
    alert: FraudAlert
    features: bytes | None


class TransactionsWorker:
    """The transactions agent's state and its batch step (see the module docstring)."""

    def __init__(
        self, app: faust.App, fraud_tables: FraudTables, worker: str, bootstrap: str
    ) -> None:
        self.tables = fraud_tables
        self.worker = worker
        self.alerts_topic = app.topic(FRAUD_ALERTS, key_serializer="raw", value_serializer="raw")
        self.dead_topic = app.topic(dlq(TRANSACTIONS), key_serializer="raw", value_serializer="raw")
        self.ruleset: RuleSet = load_default_rules()
        self.partitions: dict[int, _Partition] = {}
        self.processed: dict[int, int] = {}
        """Partition -> offset of the last transaction record processed (and written)."""
        self.verdicts: list[tuple[int, int, FraudFeedback]] = []
        """Every verdict read: (fraud-feedback partition, offset, verdict)."""
        self.control = BroadcastReader(
            bootstrap, (FRAUD_RULES, FRAUD_FEEDBACK), self.on_control, client_id=worker
        )
        self._traced: dict[str, float] = {}
        self.followers: list[Follower] = []
        self._scored = DECISIONS.labels("scored")
        self._duplicates = DECISIONS.labels("duplicate")
        RULESET_VERSION.set(self.ruleset.version)

    # ------------------------------------------------------------------ control topics

    def on_control(self, record: ConsumerRecord[bytes, bytes], caught_up: bool) -> None:
        if record.topic == FRAUD_RULES:
            self._on_rules(record, caught_up)
        else:
            self._on_verdict(record)

    def _on_rules(self, record: ConsumerRecord[bytes, bytes], caught_up: bool) -> None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if record.key != rulebook.RULES_KEY:
            logger.warning("%s: ignoring a record with key %r, not a rule set", where, record.key)
            return
        try:
            ruleset = rulebook.parse(record.value)
        except rulebook.RuleSetError as exc:
            logger.error(
                "%s: rejected rule set: %s; still running rule set version %d",
                where,
                exc,
                self.ruleset.version,
            )
            return
        previous = self.ruleset.version
        self.ruleset = ruleset
        for part in self.partitions.values():
            part.detector.set_ruleset(ruleset)
        RULESET_VERSION.set(ruleset.version)
        log = logger.info if caught_up else logger.debug
        log(
            "%s: rule set version %d applied (%d rules enabled; was version %d)",
            where,
            ruleset.version,
            sum(r.enabled for r in ruleset.rules),
            previous,
        )

    def _on_verdict(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            verdict = decode(FraudFeedback, record.value or b"")
        except EventError as exc:
            logger.error(
                "%s[%d]@%d: not a verdict, skipped: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return
        self.verdicts.append((record.partition, record.offset, verdict))

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
        by_partition: dict[int, list[EventT]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        batches: list[_Batch] = []
        alerts: list[_Alert] = []
        dead: list[tuple[EventT, str, FailureStage]] = []
        for partition, partition_events in by_partition.items():
            with partition_of(partition_events[-1]):
                part = self._partition(partition)
                batch = _Batch(partition, partition_events[-1], part)
                self._learn_verdicts(part, batch)
                for event in partition_events:
                    message = event.message
                    decoded[partition, message.offset] = self._score(
                        event, part, batch, alerts, dead
                    )
            batches.append(batch)
        await send_dead_letters(self.dead_topic, dead, self.worker)
        await self._emit(alerts)
        await self._write(batches)
        for partition, partition_events in by_partition.items():
            self.processed[partition] = partition_events[-1].message.offset
        return decoded

    # ------------------------------------------------------------------ steps

    def _partition(self, partition: int) -> _Partition:
        part = self.partitions.get(partition)
        if part is not None:
            return part
        raw = tables.read(self.tables.detector_state, tables.detector_key(partition))
        record: DetectorRecord | None = None
        if raw is not None:
            try:
                record = DetectorRecord.from_bytes(raw)
            except (ValueError, TypeError, EOFError) as exc:
                logger.error("partition %d: detector state unreadable (%s)", partition, exc)
        if record is None:
            record = DetectorRecord(AnomalyModel(), RulePrecision())
            logger.info("partition %d: new anomaly model", partition)
        else:
            logger.info(
                "partition %d: anomaly model restored (%d updates learned, %d verdicts)",
                partition,
                record.model.learned,
                sum(record.model.verdicts),
            )
        detector = Detector(self.ruleset, record.model, record.precision)
        part = _Partition(detector, record.feedback_applied)
        self.partitions[partition] = part
        return part

    def _learn_verdicts(self, part: _Partition, batch: _Batch) -> None:
        """Teach the partition the verdicts it has not learned yet."""
        detector = part.detector
        for feedback_partition, offset, verdict in self.verdicts[part.feedback_seen :]:
            if offset <= part.feedback_applied.get(feedback_partition, -1):
                continue
            detector.record_verdict(verdict.reasons, verdict.is_fraud)
            if verdict.features is not None:
                try:
                    features = Features(**verdict.features)
                except TypeError as exc:
                    logger.warning(
                        "verdict on %s: features unusable (%s)", verdict.transaction_id, exc
                    )
                else:
                    detector.model.learn_feedback(features, verdict.is_fraud)
            if partition_for(verdict.user_id) == batch.partition:
                key = tables.merchant_key(batch.partition, verdict.merchant_id)
                self._merchant(part, key).record_verdict(verdict.is_fraud)
                part.changed_merchants.add(key)
            part.feedback_applied[feedback_partition] = offset
            part.persist_now = True
            VERDICTS.inc()
        part.feedback_seen = len(self.verdicts)

    def _score(
        self,
        event: EventT,
        part: _Partition,
        batch: _Batch,
        alerts: list[_Alert],
        dead: list[tuple[EventT, str, FailureStage]],
    ) -> Transaction | None:
        """Decide on one record; returns it decoded (None: not a transaction)."""
        try:
            tx = decode(Transaction, event.value)
        except EventError as exc:
            dead.append((event, str(exc), exc.stage))
            return None
        try:
            user = tables.user_key(tx.user_id)
            merchant = tables.merchant_key(batch.partition, tx.merchant_id)
            decision = part.detector.process(
                tx, self._user(part, user), self._merchant(part, merchant)
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

    def _user(self, part: _Partition, key: bytes) -> UserState:
        state = part.users.get(key)
        if state is not None:
            part.users.move_to_end(key)
        else:
            raw = tables.read(self.tables.user_state, key)
            state = UserState()
            if raw is not None:
                try:
                    state = UserState.from_bytes(raw)
                except (ValueError, TypeError) as exc:
                    logger.error("user %s: state unreadable, starting afresh: %s", key, exc)
            part.users[key] = state
        return state

    def _merchant(self, part: _Partition, key: bytes) -> MerchantStats:
        stats = part.merchants.get(key)
        if stats is None:
            raw = tables.read(self.tables.merchant_stats, key)
            stats = MerchantStats()
            if raw is not None:
                try:
                    stats = MerchantStats.from_bytes(raw)
                except (ValueError, TypeError) as exc:
                    logger.error("merchant %s: stats unreadable, starting afresh: %s", key, exc)
            part.merchants[key] = stats
        return stats

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
            ALERT_LATENCY.observe(time.time() - alert.event_time.timestamp())
            metrics.ALERTS.labels(alert.priority.value).inc()

    async def _write(self, batches: list[_Batch]) -> None:
        """Write each changed user once; merchant views and the detector every few seconds
        (each write is one changelog record; ``tables.write_many`` writes them in bulk)."""
        now = time.monotonic()
        for batch in batches:
            with partition_of(batch.anchor):
                part, partition = batch.part, batch.partition
                await tables.write_many(
                    self.tables.user_state,
                    partition,
                    [(key, part.users[key].to_bytes()) for key in batch.changed_users],
                )
                while len(part.users) > USERS_CACHED_PER_PARTITION:
                    part.users.popitem(last=False)
                self._scored.inc(batch.scored)
                self._duplicates.inc(batch.duplicates)
                due = now - part.last_persist >= tables.DETECTOR_PERSIST_S
                if part.persist_now or (part.learned_since_persist and due):
                    await tables.write_many(
                        self.tables.merchant_stats,
                        partition,
                        [(key, part.merchants[key].to_bytes()) for key in part.changed_merchants],
                    )
                    part.changed_merchants.clear()
                    await tables.write_many(
                        self.tables.detector_state,
                        partition,
                        [(tables.detector_key(partition), part.record().to_bytes())],
                    )
                    part.last_persist = now
                    part.persist_now = part.learned_since_persist = False

    def forget(self, partitions: set[int]) -> None:
        """Drop revoked partitions' detectors; a later assignment reloads them."""
        for partition in partitions:
            self.partitions.pop(partition, None)
            self.processed.pop(partition, None)

    # ------------------------------------------------------------------ web views

    def detector_summary(self, held: list[int]) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "ruleset_version": self.ruleset.version,
            "control_caught_up": self.control.caught_up.is_set(),
            "held_partitions": held,
            "processed": {str(p): offset for p, offset in sorted(self.processed.items())},
            "partitions": {
                str(p): {
                    "model_version": part.detector.model.version,
                    "model_updates": part.detector.model.learned,
                    "verdicts_learned": sum(part.detector.model.verdicts),
                    "rule_precision": {
                        rule: round(part.detector.rule_precision.precision(rule), 3)
                        for rule in sorted(part.detector.rule_precision.counts)
                    },
                }
                for p, part in sorted(self.partitions.items())
            },
        }


def _bootstrap(app: faust.App) -> str:
    return ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)


_WORKERS: weakref.WeakKeyDictionary[faust.App, TransactionsWorker] = weakref.WeakKeyDictionary()


def worker_on(app: faust.App) -> TransactionsWorker | None:
    """The transactions worker that :func:`build` added to ``app``, if any."""
    return _WORKERS.get(app)


def build(app: faust.App, spec: WorkerSpec) -> None:
    """Add the transactions agent, its tables, the control-topic reader and views."""
    # A dead letter is its record base64-encoded plus metadata; without a larger request
    # limit a record near the broker's 1 MB limit could not be dead-lettered whole.
    app.conf.producer_max_request_size = DEAD_LETTER_MAX_BYTES
    # Hand records to the agent without four asyncio tasks each (see the module).
    faust_fastpath.install()
    app.conf.producer_max_batch_size = PRODUCER_BATCH_BYTES
    # A batch can send hundreds of alerts or dead letters at once; at Faust's default (100)
    # every incoming record would wait for the buffer to drain, one record at a time.
    app.producer.buffer.max_messages = PRODUCER_BUFFER_MESSAGES  # creates the producer: last
    fraud_tables = tables.define(app)
    worker = TransactionsWorker(
        app, fraud_tables, worker_id(spec.name, spec.instance), _bootstrap(app)
    )
    _WORKERS[app] = worker
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

    @app.page("/fraud/detector/")
    class DetectorView(View):
        async def get(self, request: Request) -> Response:
            try:
                assignment = app.consumer.assignment()
            except Exception:  # the consumer is not started yet
                assignment = set()
            held = sorted(tp.partition for tp in assignment if tp.topic == TRANSACTIONS)
            return self.json(worker.detector_summary(held))

    if METRICS_PATH not in app.web.views:

        @app.page(METRICS_PATH)
        class MetricsView(View):
            async def get(self, request: Request) -> Response:
                return self.bytes(generate_latest(), content_type=METRICS_CONTENT_TYPE)
