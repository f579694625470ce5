"""The transactions worker's RocksDB tables: per-user state, merchant stats, detector state.

Every table is partitioned like ``transactions`` (by user) and holds raw bytes, so a value
is written exactly as ``ecap.fraud`` serialises it and Faust adds no codec of its own:

``fraud-user-state``      user id -> ``UserState.to_bytes()``
``fraud-merchant-stats``  ``"<partition>:<merchant id>"`` -> ``MerchantStats.to_bytes()``
``fraud-detector-state``  ``"detector:<partition>"`` -> :class:`DetectorRecord` bytes

**Merchants with several workers.** The stream is keyed by user, so one merchant's
transactions arrive on every partition. Each partition keeps its own view of a merchant,
under a key that names the partition, and only the worker that owns the partition writes
it. Merchant risk is scored from that view: users are spread over the partitions by hash,
so a partition sees about 1/N of a merchant's purchases with the same refund and fraud
*rates*, which is what the risk score reads. This keeps one writer per record (no lost
updates between workers, no repartition topic) and makes a partition's decisions depend
on that partition's events alone, so one worker and two workers raise the same alerts.

**Writes follow the event's partition.** Faust picks the RocksDB partition and the
changelog partition of a write from the event being processed. The worker processes a
batch (``ecap.kafka.batches``) per partition and wraps each partition's reads and writes in
``ecap.patches.faust_batch_context.partition_of``, so a key always lands in the partition
of the user it belongs to. Reads and writes go through the tables' store
(``tables.store``), which writes a partition's changes in bulk.

**Written every few seconds.** The anomaly model and the rule precision counts live per
partition too, with the offsets of the ``fraud-feedback`` records they have learned. They
and the partition's merchant views are written every :data:`DETECTOR_PERSIST_S` (and at
once after a verdict), not every batch (``tables.fraud_partition``): a merchant view
changes with almost every transaction, and a crash costs only a few seconds of counts and
learning, while user state, which decides alerts and de-duplication, is written with every
batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faust
import orjson
from aiokafka.partitioner import murmur2
from faust.types import TableT

from ecap.fraud.detector import RulePrecision
from ecap.fraud.model import AnomalyModel
from ecap.topics import BY_NAME, TRANSACTIONS
from tables import changelog_reset
from tables.log_resets import LogResets
from tables.store import StateStore, TableApiStore, store_for

USER_STATE = "fraud-user-state"
MERCHANT_STATS = "fraud-merchant-stats"
DETECTOR_STATE = "fraud-detector-state"

PARTITIONS = BY_NAME[TRANSACTIONS].partitions
"""Tables are co-partitioned with ``transactions``: Faust requires the same count."""

DETECTOR_PERSIST_S = 5.0
"""How often a partition's model and merchant views are written when they changed."""

DETECTOR_RECORD_VERSION = 1


@dataclass(frozen=True)
class FraudTables:
    user_state: TableT[bytes, bytes]
    merchant_stats: TableT[bytes, bytes]
    detector_state: TableT[bytes, bytes]
    store: StateStore = field(default_factory=TableApiStore)
    """How the three are read and written (``tables.store``)."""


def define(app: faust.App, resets: LogResets | None = None) -> FraudTables:
    """Declare the three tables on ``app`` (call once, from the worker's ``build``). Each
    re-seeds its changelog from RocksDB when it finds the log reset, and tells ``resets``
    (``tables.changelog_reset``)."""
    told = resets if resets is not None else LogResets()

    def table(name: str, help_text: str) -> TableT[bytes, bytes]:
        return changelog_reset.define(
            app,
            name,
            source=TRANSACTIONS,
            resets=told,
            partitions=PARTITIONS,
            key_type=bytes,
            value_type=bytes,
            help=help_text,
        )

    return FraudTables(
        user_state=table(USER_STATE, "Per-user fraud state (UserState bytes)."),
        merchant_stats=table(MERCHANT_STATS, "Per-partition merchant statistics."),
        detector_state=table(DETECTOR_STATE, "Per-partition anomaly model and rule precision."),
        store=store_for(app),
    )


def partition_for(user_id: str, partitions: int = PARTITIONS) -> int:
    """The ``transactions`` partition of a user (Kafka's default murmur2 partitioner), and
    so of the user's state."""
    return (murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions


def user_key(user_id: str) -> bytes:
    return user_id.encode()


def merchant_key(partition: int, merchant_id: str) -> bytes:
    return f"{partition}:{merchant_id}".encode()


def detector_key(partition: int) -> bytes:
    return f"detector:{partition}".encode()


@dataclass
class DetectorRecord:
    """What a partition's detector has learned, as one table value.

    Layout: a JSON header line (version, rule precision counts, feedback offsets applied)
    followed by the pickled :class:`AnomalyModel`.
    """

    model: AnomalyModel
    precision: RulePrecision
    feedback_applied: dict[int, int] = field(default_factory=dict)
    """``fraud-feedback`` partition -> offset of the last verdict learned."""

    def to_bytes(self) -> bytes:
        header = {
            "v": DETECTOR_RECORD_VERSION,
            "precision": self.precision.counts,
            "feedback": {str(p): o for p, o in self.feedback_applied.items()},
        }
        return orjson.dumps(header) + b"\n" + self.model.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> DetectorRecord:
        head, sep, model = data.partition(b"\n")
        header = orjson.loads(head) if sep else None
        if not isinstance(header, dict) or header.get("v") != DETECTOR_RECORD_VERSION:
            raise ValueError(
                f"detector state is not layout version {DETECTOR_RECORD_VERSION}; "
                "the partition's model starts afresh"
            )
        precision = RulePrecision.from_bytes(orjson.dumps(header["precision"]))
        applied = {int(p): int(o) for p, o in header["feedback"].items()}
        return cls(AnomalyModel.from_bytes(model), precision, applied)
