"""The one adapter over Faust's table stores: read a key, write one partition's keys in bulk.

Every write to a table is a store put and a changelog record. Faust's table API does each
through its own machinery (a ``FutureMessage``, its producer buffer, a callback that rewrites
the partition's persisted offset in RocksDB), which cost the transactions worker about a
sixth of its time. :class:`RocksDBBulkStore` writes a batch of one partition as one RocksDB
write batch, hands the changelog records straight to the producer, and records the
persisted offset once, when the last of them is acknowledged. The records and the offset
are what Faust's own writes produce, so Faust's recovery reads them as its own.

The backend is chosen from the app's configuration (:func:`store_for`), as Faust chooses
its own stores by URL: RocksDB tables of an at-least-once app get the bulk writer, anything
else (``memory://`` in unit tests, or an exactly-once app, whose writes must go through
Faust's transactional producer) Faust's own API.

A changelog found reset (``tables.changelog_reset``) is written again from what RocksDB
keeps: :func:`reseed_changelog` sends every key of a partition and moves the persisted
offset onto the new log. This module and ``ecap.patches`` are the only code that touches
Faust internals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from typing import Protocol

import faust
import rocksdict
from faust.stores.rocksdb import Store as FaustRocksDBStore
from faust.types import TP, ProcessingGuarantee, RecordMetadata, TableT

from ecap.patches import require

logger = logging.getLogger(__name__)

SUPPORTED = ("0.15.3",)
"""faust-streaming versions whose RocksDB store (``_db_for_partition``,
``set_persisted_offset``) :class:`RocksDBBulkStore` was written against."""


class StateStore(Protocol):
    """How the agents read and write their tables' raw bytes."""

    def read(self, table: TableT[bytes, bytes], key: bytes) -> bytes | None:
        """``key``'s value in the current partition (see ``faust_batch_context``)."""

    async def write_many(
        self, table: TableT[bytes, bytes], partition: int, items: Sequence[tuple[bytes, bytes]]
    ) -> None:
        """Set each ``(key, value)`` of ``items`` in ``partition`` of ``table``."""


def _read(table: TableT[bytes, bytes], key: bytes) -> bytes | None:
    # One store lookup: the table's own ``get`` checks membership first, a second lookup.
    value: bytes | None = table.data.get(key)
    return value


class TableApiStore:
    """Faust's own table API, for any store: the caller wraps the writes in
    ``ecap.patches.faust_batch_context.partition_of`` an event of ``partition``."""

    def read(self, table: TableT[bytes, bytes], key: bytes) -> bytes | None:
        return _read(table, key)

    async def write_many(
        self, table: TableT[bytes, bytes], partition: int, items: Sequence[tuple[bytes, bytes]]
    ) -> None:
        for key, value in items:
            table[key] = value


class RocksDBBulkStore:
    """One RocksDB write batch and the changelog records sent straight to the producer.

    :meth:`write_many` returns once the records are queued, as Faust's writes do (offsets
    are committed after the producer is flushed), and sets the partition's persisted
    changelog offset when the last record is acknowledged.
    """

    def __init__(self) -> None:
        require("Faust", faust.__version__, SUPPORTED, __name__)

    def read(self, table: TableT[bytes, bytes], key: bytes) -> bytes | None:
        return _read(table, key)

    async def write_many(
        self, table: TableT[bytes, bytes], partition: int, items: Sequence[tuple[bytes, bytes]]
    ) -> None:
        if not items:
            return
        store = table.data
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in items:
            batch.put(key, value)
        store._db_for_partition(partition).write(batch)  # type: ignore[attr-defined]
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
            # records of one call share a partition and are acknowledged in order, so a
            # failed produce request shows on the last record, unless the call's records
            # needed more than one request and an earlier one failed alone (that goes
            # unlogged).
            if future.cancelled():
                return
            error = future.exception()
            if error is not None:
                logger.error("%s: changelog records not written: %r", changelog, error)
                return
            store.set_persisted_offset(changelog, future.result().offset)  # type: ignore[attr-defined]

        last.add_done_callback(persisted)


def store_for(app: faust.App) -> StateStore:
    """The backend for ``app``'s tables: bulk RocksDB writes where Faust's tables are
    RocksDB and no Kafka transaction is in play, Faust's own table API otherwise.

    Read from the configuration, not ``app.in_transaction``: Faust caches that property
    the first time it is read and it is False until the worker starts, so read while the
    tables are defined it would stay False for good."""
    exactly_once = app.conf.processing_guarantee == ProcessingGuarantee.EXACTLY_ONCE
    if app.conf.store.scheme == "rocksdb" and not exactly_once:
        return RocksDBBulkStore()
    return TableApiStore()


def persisted_offset(table: TableT[bytes, bytes], partition: int) -> int | None:
    """The changelog offset Faust's recovery of ``partition`` starts after (None: none kept)."""
    topic = table.changelog_topic.get_topic_name()
    offset: int | None = table.data.persisted_offset(TP(topic, partition))  # type: ignore[attr-defined]
    return offset


def kept_items(table: TableT[bytes, bytes], partition: int) -> Iterator[tuple[bytes, bytes]]:
    """Every key and value RocksDB keeps for ``partition`` of ``table`` (none for a store
    that keeps nothing across restarts)."""
    store = table.data
    if not isinstance(store, FaustRocksDBStore):
        return
    offset_key = store.offset_key
    for key, value in store._db_for_partition(partition).items():
        if key != offset_key:
            yield key, value


async def reseed_changelog(table: TableT[bytes, bytes], partition: int, end: int) -> int:
    """Send every key RocksDB keeps for ``partition`` to the changelog partition, wait for
    the broker to acknowledge them all, and record the last one's offset as persisted, so
    Faust's recovery finds the changelog and RocksDB in step. With nothing kept, the
    persisted offset becomes ``end - 1`` (the log's last offset). Returns the keys sent."""
    topic = table.changelog_topic.get_topic_name()
    producer = table.app.producer
    pending: list[asyncio.Future[RecordMetadata]] = []
    for key, value in kept_items(table, partition):
        pending.append(await producer.send(topic, key, value, partition, None, None))  # type: ignore[arg-type]
    last = end - 1
    if pending:
        await producer.flush()
        acknowledged = await asyncio.gather(*pending)
        last = max(metadata.offset for metadata in acknowledged)
    table.data.set_persisted_offset(TP(topic, partition), last)  # type: ignore[attr-defined]
    return len(pending)
