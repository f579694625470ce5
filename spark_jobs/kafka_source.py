"""Kafka → Spark: a PySpark Python data source over confluent-kafka.

Spark's own Kafka connector is a Maven artifact these machines cannot fetch, so topics are
read by a Python data source (``pyspark.sql.datasource``). The driver plans one
:class:`OffsetRange` per Kafka partition; each becomes one Spark partition, read by a
consumer that is assigned (never subscribed: no consumer group, nothing committed to Kafka)
and that stops exactly at the planned end.

**True end of a partition.** The embedded broker (Tansu) reports as "latest" the base offset
of the last record batch instead of last offset + 1, so a reader trusting it would silently
miss the tail of every partition. Planning takes the ends from
:func:`ecap.kafka.offsets.partition_ranges`, the project's one implementation of the
workaround (read from the reported end to end-of-partition, then take the high watermark the
fetch carried; on Apache Kafka that read is empty and changes nothing).

**Exactly the planned records.** Ingest should plan first (:func:`plan_offset_ranges`),
record the plan in its Delta commit, and read with that plan (:func:`read_kafka`), so the
rows written and the offsets recorded cannot disagree.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from ecap.kafka.offsets import partition_ranges

FORMAT_NAME = "ecap_kafka"

SCHEMA = "topic STRING, partition INT, offset LONG, timestamp TIMESTAMP, key BINARY, value BINARY"

_ARROW_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("key", pa.binary()),
        ("value", pa.binary()),
    ]
)

# Sessions that know FORMAT_NAME (registering twice logs a warning each time).
_registered: weakref.WeakSet[SparkSession] = weakref.WeakSet()
# Records per Arrow batch handed to Spark, and per consume() call.
_BATCH_SIZE = 10_000
# Longest single wait inside consume().
_POLL_S = 1.0
# A partition that yields nothing for this long while records are still due is an error.
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OffsetRange:
    """Records ``[start, end)`` of one Kafka partition."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.start


class KafkaReadError(RuntimeError):
    """A topic or partition could not be read as planned."""


def _consumer_config(bootstrap_servers: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap_servers,
        # Required by librdkafka, but unused: partitions are assigned and nothing is committed.
        "group.id": "ecap-spark-reader",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
    }


def plan_offset_ranges(
    bootstrap_servers: str,
    topic: str,
    start_offsets: Mapping[int, int] | None = None,
    end_offsets: Mapping[int, int] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[OffsetRange]:
    """One offset range per partition of ``topic``, in partition order.

    A partition missing from ``start_offsets`` starts at its earliest offset; one missing from
    ``end_offsets`` ends at its true end. A start before the earliest retained offset is an
    error: those records are gone, and silently skipping them would lose data.
    """
    try:
        available = partition_ranges(bootstrap_servers, [topic], timeout=timeout_s)
    except (KafkaException, TimeoutError) as exc:
        raise KafkaReadError(
            f"Kafka at {bootstrap_servers} did not give the offsets of topic {topic!r} within "
            f"{timeout_s:g} s ({exc}); check ECAP_KAFKA_BOOTSTRAP, or start the embedded "
            "stack with 'ecap up'"
        ) from exc
    if not available:
        raise KafkaReadError(
            f"topic {topic!r} does not exist on Kafka at {bootstrap_servers}; create the "
            "topics first ('ecap topics create')"
        )
    partitions = sorted(partition for _, partition in available)
    unknown = sorted((set(start_offsets or {}) | set(end_offsets or {})) - set(partitions))
    if unknown:
        raise KafkaReadError(
            f"topic {topic!r} has partitions {partitions}; offsets were given for {unknown}"
        )
    ranges = []
    for p in partitions:
        earliest, true_end = available[(topic, p)]
        start = (start_offsets or {}).get(p, earliest)
        end = (end_offsets or {}).get(p, true_end)
        if start < earliest:
            raise KafkaReadError(
                f"topic {topic!r} partition {p}: start offset {start} is before the earliest "
                f"retained offset {earliest}; records {start}..{earliest - 1} were deleted by "
                "retention"
            )
        if end < start:
            raise KafkaReadError(
                f"topic {topic!r} partition {p}: end offset {end} is before start offset "
                f"{start}; was the topic recreated (the embedded broker keeps no data across "
                "restarts)?"
            )
        ranges.append(OffsetRange(topic, p, start, end))
    return ranges


def _offsets_option(ranges: Sequence[OffsetRange], which: str) -> str:
    return json.dumps({str(r.partition): getattr(r, which) for r in ranges})


def _parse_offsets(raw: str | None, name: str) -> dict[int, int] | None:
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
        return {int(partition): int(offset) for partition, offset in parsed.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise KafkaReadError(
            f"option {name!r} must be a JSON object of partition to offset, "
            f'like {{"0": 42, "1": 7}}; got {raw!r}'
        ) from exc


@dataclass
class _RangePartition(InputPartition):
    range: OffsetRange


class KafkaDataSource(DataSource):
    """``spark.read.format("ecap_kafka")``: a topic's records between two offsets per partition.

    Options: ``bootstrapServers``, ``topic`` (required); ``startingOffsets`` and
    ``endingOffsets`` as JSON ``{"partition": offset}`` (default: earliest, and the true
    end; when both name the same partitions, exactly those ranges are read and the broker is
    not asked again); ``timeoutSeconds``.
    """

    @classmethod
    def name(cls) -> str:
        return FORMAT_NAME

    def schema(self) -> str:
        return SCHEMA

    def reader(self, schema: StructType) -> DataSourceReader:
        return _KafkaReader(dict(self.options))


class _KafkaReader(DataSourceReader):
    def __init__(self, options: dict[str, str]) -> None:
        options = {k.lower(): v for k, v in options.items()}
        for required in ("bootstrapservers", "topic"):
            if not options.get(required):
                raise KafkaReadError(
                    f"the {FORMAT_NAME} source needs the option "
                    f"{'bootstrapServers' if required == 'bootstrapservers' else 'topic'}"
                )
        self.bootstrap = options["bootstrapservers"]
        self.topic = options["topic"]
        self.start_offsets = _parse_offsets(options.get("startingoffsets"), "startingOffsets")
        self.end_offsets = _parse_offsets(options.get("endingoffsets"), "endingOffsets")
        self.timeout_s = float(options.get("timeoutseconds", DEFAULT_TIMEOUT_S))

    def partitions(self) -> Sequence[InputPartition]:
        if (
            self.start_offsets is not None
            and self.end_offsets is not None
            and self.start_offsets.keys() == self.end_offsets.keys()
        ):
            # A complete plan: read exactly it, without asking the broker again.
            ranges = [
                OffsetRange(self.topic, p, self.start_offsets[p], self.end_offsets[p])
                for p in sorted(self.start_offsets)
            ]
            bad = [r for r in ranges if r.end < r.start]
            if bad:
                raise KafkaReadError(f"offset ranges end before they start: {bad}")
            return [_RangePartition(r) for r in ranges]
        ranges = plan_offset_ranges(
            self.bootstrap,
            self.topic,
            self.start_offsets,
            self.end_offsets,
            timeout_s=self.timeout_s,
        )
        return [_RangePartition(r) for r in ranges]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, _RangePartition)
        if partition.range.count > 0:
            yield from _read_range(
                partition.range,
                _consumer_config(self.bootstrap),
                self.timeout_s,
            )


def _read_range(
    offsets: OffsetRange, config: dict[str, Any], timeout_s: float
) -> Iterator[pa.RecordBatch]:
    """Yield the records of ``offsets`` as Arrow batches, and fail if any is missing."""
    consumer = Consumer(config)
    consumer.assign([TopicPartition(offsets.topic, offsets.partition, offsets.start)])
    where = f"topic {offsets.topic!r} partition {offsets.partition}"
    next_offset = offsets.start
    idle_since = time.monotonic()
    try:
        while next_offset < offsets.end:
            # consume() waits until it has every record asked for (or the timeout), so ask
            # for no more than the range still holds, and wait briefly each time: gaps in the
            # offsets or an early end-of-partition would otherwise cost the whole wait.
            wanted = min(_BATCH_SIZE, offsets.end - next_offset)
            messages = consumer.consume(wanted, timeout=_POLL_S)
            if not messages:
                if time.monotonic() - idle_since > timeout_s:
                    raise KafkaReadError(
                        f"{where}: no record after offset {next_offset} within {timeout_s:g} s, "
                        f"but the plan reads up to {offsets.end}"
                    )
                continue
            idle_since = time.monotonic()
            columns: dict[str, list[Any]] = {name: [] for name in _ARROW_SCHEMA.names}
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaReadError(f"{where}: fetch failed at {next_offset}: {error}")
                    ended_at = message.offset()
                    if ended_at is not None and ended_at < offsets.end:
                        raise KafkaReadError(
                            f"{where} ends at offset {ended_at}, before the planned "
                            f"end {offsets.end}"
                        )
                    next_offset = offsets.end
                    break
                offset = message.offset()
                assert offset is not None
                if offset >= offsets.end:
                    next_offset = offsets.end
                    break
                timestamp_type, timestamp_ms = message.timestamp()
                columns["topic"].append(offsets.topic)
                columns["partition"].append(offsets.partition)
                columns["offset"].append(offset)
                columns["timestamp"].append(
                    None if timestamp_type == TIMESTAMP_NOT_AVAILABLE else timestamp_ms * 1000
                )
                columns["key"].append(message.key())
                columns["value"].append(message.value())
                next_offset = offset + 1
            if columns["offset"]:
                yield pa.RecordBatch.from_pydict(columns, schema=_ARROW_SCHEMA)
    finally:
        consumer.close()


def read_kafka(
    spark: SparkSession,
    bootstrap_servers: str,
    topic: str,
    ranges: Sequence[OffsetRange] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> DataFrame:
    """A DataFrame of ``topic``'s records in ``ranges`` (default: everything up to the true end).

    Pass the ranges from :func:`plan_offset_ranges` to read exactly what was planned (and
    only the partitions they name).
    """
    if spark not in _registered:
        spark.dataSource.register(KafkaDataSource)
        _registered.add(spark)
    reader = (
        spark.read.format(FORMAT_NAME)
        .option("bootstrapServers", bootstrap_servers)
        .option("topic", topic)
        .option("timeoutSeconds", str(timeout_s))
    )
    if ranges is not None:
        if any(r.topic != topic for r in ranges):
            raise KafkaReadError(f"offset ranges of another topic passed to read {topic!r}")
        reader = reader.option("startingOffsets", _offsets_option(ranges, "start")).option(
            "endingOffsets", _offsets_option(ranges, "end")
        )
    return reader.load()
