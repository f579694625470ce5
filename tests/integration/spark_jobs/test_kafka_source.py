"""The Kafka data source reads exactly the planned records from a real (embedded) broker."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pyspark.sql import SparkSession

from spark_jobs.kafka_source import (
    KafkaReadError,
    OffsetRange,
    plan_offset_ranges,
    read_kafka,
)

pytestmark = pytest.mark.integration

BASE_MS = 1_700_000_000_000

Produced = tuple[int, bytes, bytes, int]  # partition, key, value, timestamp ms
Read = tuple[int, int, bytes, bytes, int]  # partition, offset, key, value, timestamp ms


def _topic(bootstrap: str, partitions: int) -> str:
    name = f"spark-source-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result()
    return name


def _produce(bootstrap: str, topic: str, records: list[Produced]) -> None:
    """Produce with batching: several records to a batch, which makes the embedded broker
    report a wrong end."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for partition, key, value, timestamp in records:
        producer.produce(topic, key=key, value=value, partition=partition, timestamp=timestamp)
    producer.flush()


def _records(partitions: int, per_partition: int) -> list[Produced]:
    return [
        (p, f"k{p}-{i}".encode(), f"v{p}-{i}".encode(), BASE_MS + 1000 * p + i)
        for p in range(partitions)
        for i in range(per_partition)
    ]


def _rows(
    spark: SparkSession, bootstrap: str, topic: str, ranges: list[OffsetRange] | None
) -> set[Read]:
    df = read_kafka(spark, bootstrap, topic, ranges)
    return {
        (r["partition"], r["offset"], r["key"], r["value"], r["ts_ms"])
        for r in df.selectExpr(
            "topic", "partition", "offset", "key", "value", "unix_millis(timestamp) AS ts_ms"
        )
        .where(f"topic = '{topic}'")
        .collect()
    }


def test_reads_every_record_with_key_value_and_timestamp(
    spark: SparkSession, kafka_bootstrap: str
) -> None:
    topic = _topic(kafka_bootstrap, 3)
    _produce(kafka_bootstrap, topic, _records(3, 10))
    expected = {
        (p, i, f"k{p}-{i}".encode(), f"v{p}-{i}".encode(), BASE_MS + 1000 * p + i)
        for p in range(3)
        for i in range(10)
    }
    assert _rows(spark, kafka_bootstrap, topic, None) == expected


def test_planned_end_is_the_true_end_of_each_partition(kafka_bootstrap: str) -> None:
    # One batch of 25 records: the embedded broker reports its base offset, 0, as the end.
    topic = _topic(kafka_bootstrap, 2)
    _produce(kafka_bootstrap, topic, _records(1, 25))
    assert plan_offset_ranges(kafka_bootstrap, topic) == [
        OffsetRange(topic, 0, 0, 25),
        OffsetRange(topic, 1, 0, 0),
    ]


def test_one_spark_partition_per_kafka_partition(spark: SparkSession, kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap, 3)
    _produce(kafka_bootstrap, topic, _records(3, 2))
    assert read_kafka(spark, kafka_bootstrap, topic).rdd.getNumPartitions() == 3


def test_reads_only_the_given_ranges(spark: SparkSession, kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap, 2)
    _produce(kafka_bootstrap, topic, _records(2, 10))
    ranges = [OffsetRange(topic, 0, 2, 5), OffsetRange(topic, 1, 9, 10)]
    offsets = {(p, o) for p, o, *_ in _rows(spark, kafka_bootstrap, topic, ranges)}
    assert offsets == {(0, 2), (0, 3), (0, 4), (1, 9)}


def test_planning_from_the_last_ends_reads_only_new_records(
    spark: SparkSession, kafka_bootstrap: str
) -> None:
    topic = _topic(kafka_bootstrap, 2)
    _produce(kafka_bootstrap, topic, _records(2, 4))
    first = plan_offset_ranges(kafka_bootstrap, topic)
    _produce(kafka_bootstrap, topic, [(1, b"new", b"late", BASE_MS)])
    second = plan_offset_ranges(kafka_bootstrap, topic, {r.partition: r.end for r in first})
    assert _rows(spark, kafka_bootstrap, topic, second) == {(1, 4, b"new", b"late", BASE_MS)}


def test_a_topic_with_no_records_reads_as_no_rows(
    spark: SparkSession, kafka_bootstrap: str
) -> None:
    topic = _topic(kafka_bootstrap, 2)
    assert read_kafka(spark, kafka_bootstrap, topic).count() == 0


def test_a_range_ending_past_the_data_is_an_error(
    spark: SparkSession, kafka_bootstrap: str
) -> None:
    topic = _topic(kafka_bootstrap, 1)
    _produce(kafka_bootstrap, topic, _records(1, 3))
    df = read_kafka(spark, kafka_bootstrap, topic, [OffsetRange(topic, 0, 0, 5)])
    with pytest.raises(Exception, match="ends at offset 3, before the planned end 5"):
        df.collect()


def test_an_end_before_the_start_is_rejected(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap, 1)
    _produce(kafka_bootstrap, topic, _records(1, 3))
    with pytest.raises(KafkaReadError, match="end offset 1 is before start offset 2"):
        plan_offset_ranges(kafka_bootstrap, topic, {0: 2}, {0: 1})


def test_a_missing_topic_is_named_in_the_error(kafka_bootstrap: str) -> None:
    with pytest.raises(KafkaReadError, match="topic 'no-such-topic' does not exist"):
        plan_offset_ranges(kafka_bootstrap, "no-such-topic", timeout_s=5)
