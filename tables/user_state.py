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
:func:`partition_of`, so a key always lands in the partition of the user it belongs to.

**Written in bulk.** Every write is a RocksDB put and a changelog record. Faust's table
API does each through its own machinery (a ``FutureMessage``, its producer buffer, a
callback that rewrites the partition's persisted offset in RocksDB), which cost the worker
about a sixth of its time. :func:`write_many` writes a batch of one partition as one
RocksDB write batch, hands the changelog records straight to the producer, and records the
persisted offset once, when the last of them is acknowledged. The records and the offset
are what Faust's own writes produce, so Faust's recovery reads them as its own.

**Written every few seconds.** The anomaly model and the rule precision counts live per
partition too, with the offsets of the ``fraud-feedback`` records they have learned. They
and the partition's merchant views are written every :data:`DETECTOR_PERSIST_S` (and at
once after a verdict), not every batch: a merchant view changes with almost every
transaction, and a crash costs only a few seconds of counts and learning, while user
state, which decides alerts and de-duplication, is written with every batch.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import faust
import orjson
import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event
from faust.types import TP, EventT, RecordMetadata, TableT

from ecap.fraud.detector import RulePrecision
from ecap.fraud.model import AnomalyModel
from ecap.topics import BY_NAME, TRANSACTIONS

logger = logging.getLogger(__name__)

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


def define(app: faust.App) -> FraudTables:
    """Declare the three tables on ``app`` (call once, from the worker's ``build``)."""

    def table(name: str, help_text: str) -> TableT[bytes, bytes]:
        return app.Table(
            name,
            partitions=PARTITIONS,
            key_type=bytes,
            value_type=bytes,
            help=help_text,
        )

    return FraudTables(
        user_state=table(USER_STATE, "Per-user fraud state (UserState bytes)."),
        merchant_stats=table(MERCHANT_STATS, "Per-partition merchant statistics."),
        detector_state=table(DETECTOR_STATE, "Per-partition anomaly model and rule precision."),
    )


def user_key(user_id: str) -> bytes:
    return user_id.encode()


def merchant_key(partition: int, merchant_id: str) -> bytes:
    return f"{partition}:{merchant_id}".encode()


def detector_key(partition: int) -> bytes:
    return f"detector:{partition}".encode()


def read(table: TableT[bytes, bytes], key: bytes) -> bytes | None:
    """``key``'s value in the current partition with one RocksDB lookup (the table's own
    ``get`` checks membership first, which costs a second lookup per read)."""
    value: bytes | None = table.data.get(key)
    return value


async def write_many(
    table: TableT[bytes, bytes], partition: int, items: Sequence[tuple[bytes, bytes]]
) -> None:
    """Set each ``(key, value)`` of ``items`` in ``partition`` of ``table``.

    On a RocksDB table: one write batch, one changelog record per item sent to the
    producer (returns once they are queued, as Faust's writes do; offsets are committed
    after the producer is flushed), and the partition's persisted changelog offset set when
    the last record is acknowledged. Any other store (``memory://`` in unit tests), or a
    transactional app, goes through the table's own ``__setitem__``: the caller wraps the
    call in :func:`partition_of` an event of ``partition``.
    """
    if not items:
        return
    store = table.data
    if not isinstance(store, RocksDBStore) or table.app.in_transaction:
        for key, value in items:
            table[key] = value
        return
    batch = rocksdict.WriteBatch(raw_mode=True)
    for key, value in items:
        batch.put(key, value)
    store._db_for_partition(partition).write(batch)
    producer = table.app.producer
    topic = table.changelog_topic.get_topic_name()
    last: asyncio.Future[RecordMetadata] | None = None
    for key, value in items:
        last = await producer.send(topic, key, value, partition, None, None)  # type: ignore[assignment]
    assert last is not None
    changelog = TP(topic, partition)

    def persisted(future: asyncio.Future[RecordMetadata]) -> None:
        # One callback per call, on the last record: a callback on every record's future
        # took the benchmark's p99 at 1,000 tx/s from about 170 ms to 330-620 ms. The
        # records of one call share a partition and are acknowledged in order, so a failed
        # produce request shows on the last record, unless the call's records needed more
        # than one request and an earlier one failed alone (that goes unlogged).
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            logger.error("%s: changelog records not written: %r", changelog, error)
            return
        store.set_persisted_offset(changelog, future.result().offset)

    last.add_done_callback(persisted)


@contextmanager
def partition_of(event: EventT) -> Iterator[None]:
    """Make table reads and writes inside the block use ``event``'s partition.

    Faust reads the partition from its current-event context variable, which a batch
    taken in batches does not set in the agent's task. This sets it to one
    event of the partition being processed (a private name of Faust, as is the
    RocksDB store's ``_db_for_partition`` in :func:`write_many`).
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


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
