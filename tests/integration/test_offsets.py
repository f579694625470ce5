"""True partition ends on the embedded broker, whose reported "latest" offset is wrong."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ecap.kafka.offsets import partition_ranges, record_counts


def _topic(bootstrap: str, partitions: int) -> str:
    name = f"offsets-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result()
    return name


def _produce(bootstrap: str, topic: str, per_partition: list[int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition, count in enumerate(per_partition):
        for i in range(count):
            producer.produce(topic, value=b"%d" % i, partition=partition)
            if i % 100 == 0:
                producer.flush()  # several record batches per partition
    producer.flush()


def test_ranges_are_the_true_ends(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap, 3)
    _produce(kafka_bootstrap, topic, [250, 1, 0])
    assert partition_ranges(kafka_bootstrap, [topic]) == {
        (topic, 0): (0, 250),
        (topic, 1): (0, 1),
        (topic, 2): (0, 0),
    }


def test_the_broker_itself_reports_a_smaller_end(kafka_bootstrap: str) -> None:
    """Pins the embedded broker's ListOffsets bug that partition_ranges works around."""
    topic = _topic(kafka_bootstrap, 1)
    _produce(kafka_bootstrap, topic, [250])
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "probe"})
    try:
        _, reported = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    assert reported < 250


def test_record_counts_skip_missing_topics(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap, 2)
    _produce(kafka_bootstrap, topic, [7, 5])
    assert record_counts(kafka_bootstrap, [topic, "no-such-topic"]) == {topic: 12}
