"""One assigned ``transactions`` partition's fraud state in memory: what it has learned, and
when it is written.

The transactions worker keeps, per partition it holds: the detector (its anomaly model
and rule precision counts), the recently used users' states and the merchant views, all
read from the tables (``tables.user_state``) the first time the partition meets them.
Only this worker writes them while it holds the partition, so the copies stay exact;
they go with the partition.

What is written when: each user the batch changed, once; the merchant views and the
detector every :data:`~tables.user_state.DETECTOR_PERSIST_S` when they changed, and at
once after a verdict. Writing is two steps, because the transactions agent scores the
next batch while the previous one's alerts are still on their way: :meth:`changes` takes
the batch's values as bytes right after scoring it (what the batch left, not what later
batches add), and :meth:`write` writes them once the batch's alerts are acknowledged. A
user with a change taken but not yet written stays in memory (:attr:`pending`): read
again from RocksDB, it would miss that change. The caller wraps reads and writes in
``ecap.patches.faust_batch_context.partition_of`` an event of the partition.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ecap import metrics
from ecap.events import FraudFeedback
from ecap.fraud.detector import Detector, RulePrecision
from ecap.fraud.features import Features
from ecap.fraud.merchant import MerchantStats
from ecap.fraud.model import AnomalyModel
from ecap.fraud.rules import RuleSet
from ecap.fraud.state import UserState
from tables.user_state import (
    DETECTOR_PERSIST_S,
    DetectorRecord,
    FraudTables,
    detector_key,
    merchant_key,
    partition_for,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

Verdict = tuple[int, int, FraudFeedback]
"""An investigator's verdict as read: (``fraud-feedback`` partition, offset, verdict)."""

USERS_CACHED_PER_PARTITION = 20_000
"""Decoded user states kept in memory per partition (least recently used evicted)."""

Items = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Writes:
    """One batch's changes to a partition's tables, as bytes (:meth:`FraudPartition.changes`)."""

    users: Items
    merchants: Items
    detector: Items


@dataclass
class FraudPartition:
    """One assigned partition's detector, caches and pending writes."""

    partition: int
    detector: Detector
    feedback_applied: dict[int, int]
    feedback_seen: int = 0
    """Index into the verdicts read (``agents.fraud_control``) up to which this partition
    has looked."""
    users: OrderedDict[bytes, UserState] = field(default_factory=OrderedDict)
    """Recently used users' states, least recent first: a user who comes back is not read
    from RocksDB and decoded again."""
    merchants: dict[bytes, MerchantStats] = field(default_factory=dict)
    changed_merchants: set[bytes] = field(default_factory=set)
    """Merchant views changed since they were last written (with the detector)."""
    learned_since_persist: bool = False
    persist_now: bool = False
    last_persist: float = float("-inf")
    """Never: a new partition writes its detector with its first batch."""
    pending: Counter[bytes] = field(default_factory=Counter)
    """Users with changes taken (:meth:`changes`) and not yet written: kept in memory."""

    @classmethod
    def load(cls, tables: FraudTables, partition: int, ruleset: RuleSet) -> FraudPartition:
        """The partition's detector as last written, or a new one."""
        raw = tables.store.read(tables.detector_state, detector_key(partition))
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
        detector = Detector(ruleset, record.model, record.precision)
        return cls(partition, detector, record.feedback_applied)

    def record(self) -> DetectorRecord:
        return DetectorRecord(
            self.detector.model, self.detector.rule_precision, dict(self.feedback_applied)
        )

    def user(self, tables: FraudTables, key: bytes) -> UserState:
        state = self.users.get(key)
        if state is not None:
            self.users.move_to_end(key)
            return state
        raw = tables.store.read(tables.user_state, key)
        state = _decode(raw, UserState.from_bytes, UserState, "user %s: state", key)
        self.users[key] = state
        return state

    def merchant(self, tables: FraudTables, key: bytes) -> MerchantStats:
        stats = self.merchants.get(key)
        if stats is None:
            raw = tables.store.read(tables.merchant_stats, key)
            stats = _decode(raw, MerchantStats.from_bytes, MerchantStats, "merchant %s: stats", key)
            self.merchants[key] = stats
        return stats

    def learn(self, verdicts: Sequence[Verdict], tables: FraudTables) -> None:
        """Learn the verdicts this partition has not learned yet: each teaches the
        detector's rule precision and model; one on a user of this partition also counts
        for the merchant's view here. The offsets learned are written with the detector,
        at once (``persist_now``)."""
        detector = self.detector
        for feedback_partition, offset, verdict in verdicts[self.feedback_seen :]:
            if offset <= self.feedback_applied.get(feedback_partition, -1):
                continue
            detector.record_verdict(verdict.reasons, verdict.is_fraud)
            if verdict.features is not None:
                # Features no detector computed (-1e308, inf) fail the model's maths: the
                # verdict is learned without them, instead of failing every batch after it.
                try:
                    detector.model.learn_feedback(Features(**verdict.features), verdict.is_fraud)
                except (TypeError, ValueError, ArithmeticError) as exc:
                    logger.warning(
                        "verdict on %s: features unusable (%s)", verdict.transaction_id, exc
                    )
            if partition_for(verdict.user_id) == self.partition:
                key = merchant_key(self.partition, verdict.merchant_id)
                self.merchant(tables, key).record_verdict(verdict.is_fraud)
                self.changed_merchants.add(key)
            self.feedback_applied[feedback_partition] = offset
            self.persist_now = True
            metrics.VERDICTS_LEARNED.inc()
        self.feedback_seen = len(verdicts)

    def changes(self, changed_users: Iterable[bytes], now: float) -> Writes:
        """The batch's changes as bytes: each changed user, and the merchant views and the
        detector when due. Taken right after the batch is scored."""
        users = [(key, self.users[key].to_bytes()) for key in changed_users]
        self.pending.update(key for key, _ in users)
        merchants: Items = []
        detector: Items = []
        due = now - self.last_persist >= DETECTOR_PERSIST_S
        if self.persist_now or (self.learned_since_persist and due):
            merchants = [(key, self.merchants[key].to_bytes()) for key in self.changed_merchants]
            detector = [(detector_key(self.partition), self.record().to_bytes())]
            self.changed_merchants.clear()
            self.last_persist = now
            self.persist_now = self.learned_since_persist = False
        return Writes(users, merchants, detector)

    async def write(self, tables: FraudTables, writes: Writes) -> None:
        """Write what :meth:`changes` took (each write is one changelog record; the store
        writes them in bulk), then let the least recently used users go."""
        store, partition = tables.store, self.partition
        await store.write_many(tables.user_state, partition, writes.users)
        if writes.detector:
            await store.write_many(tables.merchant_stats, partition, writes.merchants)
            await store.write_many(tables.detector_state, partition, writes.detector)
        self.pending.subtract(key for key, _ in writes.users)
        self.pending += Counter()  # drops the users left at zero
        self._trim()

    def _trim(self) -> None:
        excess = len(self.users) - USERS_CACHED_PER_PARTITION
        if excess <= 0:
            return
        evict = []
        for key in self.users:  # least recently used first
            if key not in self.pending:
                evict.append(key)
                if len(evict) == excess:
                    break
        for key in evict:
            del self.users[key]


def _decode(
    raw: bytes | None, decode: Callable[[bytes], T], empty: Callable[[], T], what: str, key: bytes
) -> T:
    """A stored value decoded, or a fresh one when there is none or it is unreadable."""
    if raw is not None:
        try:
            return decode(raw)
        except (ValueError, TypeError) as exc:
            logger.error(what + " unreadable, starting afresh: %s", key, exc)
    return empty()
