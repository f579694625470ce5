"""Bronze ingest: Kafka topics into Delta tables, incrementally and exactly once.

Each source topic is read in numbered **batches**. A batch is a set of offset ranges, one
per partition; it lands in the topic's tables (its own table, ``transaction_items`` for
transactions, and ``_rejected``), each commit carrying

- the application transaction ``(ecap-ingest:<topic>, batch number)``, and
- the batch's ranges in the commit metadata (``ecap.ingest.<topic>``).

A run, per topic, in three steps:

1. **Find the last batch.** Each of the topic's tables knows the last batch it committed.
   If they all agree, that batch is done. If one lags by a batch (an earlier run stopped
   between two commits), the batch is replayed with the ranges the leading table
   recorded: reading the same ranges gives the same records, and the tables that already
   hold the batch skip it (``write_delta`` sees their app transaction), so nothing is
   written twice and nothing is missed.
2. **Plan the next batch** from where the last one ended to the true end of each partition
   (:func:`spark_jobs.kafka_source.plan_offset_ranges`). No new record: nothing is written
   and no version is made.
3. **Read exactly those ranges, validate, write.** Records that fail the contract go to
   ``_rejected`` with their bytes and the error (see :mod:`spark_jobs.bronze`).

Compacted topics (``product-updates``, ``customers``) keep the latest row per key: the
batch is merged with the table's rows and the table is overwritten in the same commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from ecap.currency import MAX_MINOR_UNITS
from ecap.event_time import MESSAGE_PREFIX, Bounds
from ecap.settings import get_settings
from spark_jobs import bronze, delta_io, lake
from spark_jobs.kafka_source import DEFAULT_TIMEOUT_S, OffsetRange, plan_offset_ranges, read_kafka
from spark_jobs.lake import Lake
from spark_jobs.report import JobReport, Progress, quiet

APP_PREFIX = "ecap-ingest"


class IngestError(RuntimeError):
    """The lake and the topic disagree in a way a re-run cannot fix by itself."""


def app_id(topic: str) -> str:
    """The application id of a topic's batches in the Delta log."""
    return f"{APP_PREFIX}:{topic}"


def metadata_key(topic: str) -> str:
    """The commit-metadata key under which a topic's batch ranges are recorded."""
    return f"ecap.ingest.{topic}"


@dataclass(frozen=True)
class Batch:
    """Batch ``number`` of a topic: records ``[start, end)`` of each partition."""

    number: int
    ranges: tuple[OffsetRange, ...]

    @property
    def records(self) -> int:
        return sum(r.count for r in self.ranges)

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.number,
            "ranges": {str(r.partition): [r.start, r.end] for r in self.ranges},
        }

    @classmethod
    def from_json(cls, topic: str, data: dict[str, Any]) -> Batch:
        ranges = tuple(
            OffsetRange(topic, int(p), int(start), int(end))
            for p, (start, end) in sorted(data["ranges"].items(), key=lambda kv: int(kv[0]))
        )
        return cls(int(data["batch"]), ranges)


def topic_tables(the_lake: Lake, table: bronze.BronzeTable) -> list[str]:
    """The paths a topic's batches are written to, in commit order."""
    paths = [the_lake.bronze(table.name)]
    if table.name == lake.TRANSACTIONS:
        paths.append(the_lake.bronze(lake.TRANSACTION_ITEMS))
    paths.append(the_lake.bronze(lake.REJECTED))
    return paths


def last_batch(path: str, topic: str) -> Batch | None:
    """The last batch of ``topic`` committed to the table at ``path``, if any."""
    if not delta_io.table_exists(path):
        return None
    number = DeltaTable(path).transaction_version(app_id(topic))
    if number is None:
        return None
    recorded = delta_io.commit_metadata(path, metadata_key(topic))
    if recorded is None or int(recorded["batch"]) != number:
        raise IngestError(
            f"{path} holds batch {number} of topic {topic!r} but its commit metadata does not "
            f"describe it; was the table written by another tool?"
        )
    return Batch.from_json(topic, recorded)


def _next_ranges(
    bootstrap: str, topic: str, last: Batch | None, *, restart: bool, timeout_s: float
) -> list[OffsetRange]:
    """From where ``last`` ended (or, new or restarted, the earliest offset) to the true end
    of each partition."""
    available = plan_offset_ranges(bootstrap, topic, timeout_s=timeout_s)
    if last is None or restart:
        return available
    ended = {r.partition: r.end for r in last.ranges}
    again = f"run ingest with --restart-topic {topic} to read it from its earliest offset"
    gone = sorted(set(ended) - {r.partition for r in available})
    if gone:
        raise IngestError(
            f"topic {topic!r} has lost partition(s) {gone} that earlier batches read: it was "
            f"recreated; {again}"
        )
    ranges = []
    for r in available:
        start = ended.get(r.partition, r.start)
        if start > r.end:
            raise IngestError(
                f"topic {topic!r} partition {r.partition} ends at offset {r.end}, before offset "
                f"{start} where the last batch ended: the topic was recreated (the embedded "
                f"broker keeps no log across restarts); {again}"
            )
        if start < r.start:
            raise IngestError(
                f"topic {topic!r} partition {r.partition}: records {start} to {r.start - 1} "
                "were deleted by retention before they were ingested; ingest more often than "
                f"the topic's retention, and {again}"
            )
        ranges.append(OffsetRange(topic, r.partition, start, r.end))
    return ranges


def plan_batch(
    bootstrap: str,
    topic: str,
    paths: Sequence[str],
    *,
    restart: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[Batch | None, bool]:
    """The batch to write next and whether it is a replay, or ``(None, False)`` when the
    tables are up to date with the topic (steps 1 and 2 of the module docstring).

    ``restart`` reads the topic from its earliest offset again, for a topic that was
    recreated (the batch numbers go on).
    """
    done = {path: last_batch(path, topic) for path in paths}
    numbers = {path: batch.number if batch else 0 for path, batch in done.items()}
    high, low = max(numbers.values()), min(numbers.values())
    if low < high - 1:
        behind = ", ".join(f"{p} (batch {n})" for p, n in numbers.items() if n < high - 1)
        raise IngestError(
            f"topic {topic!r}: {behind} lag more than one batch behind batch {high}; restore "
            "the missing table from its Delta history, or delete all of this topic's bronze "
            "tables to ingest the topic again from its earliest offset"
        )
    leader = next((b for b in done.values() if b is not None and b.number == high), None)
    if low < high:
        assert leader is not None
        return leader, True
    ranges = _next_ranges(bootstrap, topic, leader, restart=restart, timeout_s=timeout_s)
    batch = Batch(high + 1, tuple(ranges))
    return (batch, False) if batch.records else (None, False)


# --- reading and validating ----------------------------------------------------------------


def _decoder(
    name: str, bounds: Bounds, now: datetime
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function validating the records of table ``name`` (runs in workers)
    with the driver's event-time bounds and clock."""

    def decode_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        table = bronze.TABLES[name]
        for batch in batches:
            yield bronze.decode_batch(table, batch, bounds=bounds, now=now)

    return decode_batches


def decoded_records(
    spark: SparkSession,
    bootstrap: str,
    table: bronze.BronzeTable,
    batch: Batch,
    ingested_at: datetime,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> DataFrame:
    """The batch's records, validated: table rows and failures side by side (``_error``)."""
    raw = read_kafka(spark, bootstrap, table.topic, batch.ranges, timeout_s=timeout_s)
    schema = from_arrow_schema(table.decoded_schema())
    return (
        raw.select("partition", "offset", "timestamp", "key", "value")
        .mapInArrow(_decoder(table.name, Bounds.from_settings(get_settings()), ingested_at), schema)
        .withColumn("_ingested_at", F.lit(ingested_at))
    )


_META = ["_kafka_partition", "_kafka_offset", "_kafka_timestamp", "_ingested_at"]


def table_rows(decoded: DataFrame, table: bronze.BronzeTable) -> DataFrame:
    return decoded.where(F.col("_error").isNull()).select(*table.columns, *_META)


def rejected_rows(decoded: DataFrame, table: bronze.BronzeTable) -> DataFrame:
    return decoded.where(F.col("_error").isNotNull()).select(
        F.lit(table.topic).alias("topic"),
        F.col("_kafka_partition").alias("partition"),
        F.col("_kafka_offset").alias("offset"),
        F.col("_kafka_timestamp").alias("kafka_timestamp"),
        F.col("_key").alias("key"),
        F.col("_value").alias("value"),
        F.col("_error").alias("error"),
        F.col("_stage").alias("stage"),
        "_ingested_at",
    )


def item_rows(transactions: DataFrame) -> DataFrame:
    """One row per line item of each transaction, with its line amount."""
    lines = transactions.select(
        "transaction_id",
        "event_time",
        "event_date",
        "user_id",
        "type",
        "currency",
        F.posexplode("items").alias("line_no", "item"),
        *_META,
    )
    return lines.select(
        "transaction_id",
        "line_no",
        "event_time",
        "event_date",
        "user_id",
        "type",
        F.col("item.product_id").alias("product_id"),
        F.col("item.category").alias("category"),
        F.col("item.quantity").alias("quantity"),
        F.col("item.unit_price").alias("unit_price"),
        # Rounded to the most decimals a currency has: removes the binary noise of the
        # product, never a decimal of the amount (KWD has three).
        F.round(F.col("item.quantity") * F.col("item.unit_price"), MAX_MINOR_UNITS).alias(
            "line_amount"
        ),
        "currency",
        *_META,
    )


def latest_per_key(rows: DataFrame, key: str) -> DataFrame:
    """The newest row of each key: latest event time, then the latest Kafka position."""
    newest_first = Window.partitionBy(key).orderBy(
        F.col("event_time").desc(),
        F.col("_kafka_partition").desc(),
        F.col("_kafka_offset").desc(),
    )
    return (
        rows.withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )


# --- the job -------------------------------------------------------------------------------


def ingest_topic(
    spark: SparkSession,
    bootstrap: str,
    the_lake: Lake,
    table: bronze.BronzeTable,
    report: JobReport,
    *,
    restart: bool = False,
    progress: Progress = quiet,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Batch | None:
    """Land the next batch of ``table``'s topic (or replay an unfinished one)."""
    paths = topic_tables(the_lake, table)
    batch, replay = plan_batch(bootstrap, table.topic, paths, restart=restart, timeout_s=timeout_s)
    if batch is None:
        report.facts[table.topic] = "no new records"
        return None
    what = "replaying" if replay else "reading"
    progress(f"{what} {table.topic}: batch {batch.number}, {batch.records:,} records")
    report.rows_in += batch.records
    decoded = decoded_records(
        spark, bootstrap, table, batch, datetime.now(UTC), timeout_s=timeout_s
    ).persist()
    try:
        commit: dict[str, Any] = {
            "app_id": app_id(table.topic),
            "app_version": batch.number,
            "metadata": {metadata_key(table.topic): batch.to_json()},
        }
        main = paths[0]
        rows = table_rows(decoded, table)
        progress(f"writing bronze/{table.name}")
        if table.key is not None:
            if delta_io.table_exists(main):
                rows = delta_io.read_delta(spark, main).unionByName(rows)
            result = delta_io.write_delta(
                latest_per_key(rows, table.key).coalesce(1), main, mode="overwrite", **commit
            )
        else:
            result = delta_io.write_delta(
                rows.repartition("event_date"), main, partition_by=["event_date"], **commit
            )
        report.wrote(f"bronze/{table.name}", main, result)
        if table.name == lake.TRANSACTIONS:
            items = the_lake.bronze(lake.TRANSACTION_ITEMS)
            progress(f"writing bronze/{lake.TRANSACTION_ITEMS}")
            result = delta_io.write_delta(
                item_rows(rows).repartition("event_date"),
                items,
                partition_by=["event_date"],
                **commit,
            )
            report.wrote(f"bronze/{lake.TRANSACTION_ITEMS}", items, result)
        rejected = the_lake.bronze(lake.REJECTED)
        result = delta_io.write_delta(
            rejected_rows(decoded, table).coalesce(1), rejected, partition_by=["topic"], **commit
        )
        report.wrote(f"bronze/{lake.REJECTED}", rejected, result)
        if result.committed and result.rows:
            report.facts[f"{table.topic} rejected"] = f"{result.rows:,} records"
            mistimed = decoded.where(F.col("_error").startswith(MESSAGE_PREFIX)).count()
            if mistimed:
                report.facts[f"{table.topic} event time out of bounds (set aside)"] = (
                    f"{mistimed:,} records, in {lake.REJECTED}"
                )
    finally:
        decoded.unpersist()
    return batch


def run(
    spark: SparkSession,
    bootstrap: str,
    the_lake: Lake,
    *,
    tables: Sequence[str] = tuple(bronze.TABLES),
    restart_topics: Sequence[str] = (),
    progress: Progress = quiet,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> JobReport:
    """Ingest the next batch of every topic in ``tables`` (bronze table names); topics in
    ``restart_topics`` are read from their earliest offset again (see :func:`plan_batch`)."""
    report = JobReport("ingest")
    unknown = sorted(set(tables) - set(bronze.TABLES))
    if unknown:
        raise IngestError(f"no bronze table named {unknown}; choose from {list(bronze.TABLES)}")
    topic_names = {bronze.TABLES[name].topic for name in tables}
    strangers = sorted(set(restart_topics) - topic_names)
    if strangers:
        raise IngestError(f"cannot restart {strangers}: ingest reads {sorted(topic_names)}")
    for name in tables:
        table = bronze.TABLES[name]
        ingest_topic(
            spark,
            bootstrap,
            the_lake,
            table,
            report,
            restart=table.topic in restart_topics,
            progress=progress,
            timeout_s=timeout_s,
        )
    return report.done()
