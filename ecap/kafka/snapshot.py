"""Read every record a topic holds now, once, with confluent-kafka (CLI and evaluation).

The end of each partition comes from :func:`ecap.kafka.offsets.partition_ranges`, which is
right on the embedded broker too, and ``consume`` is asked for at most the records left.
"""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ecap.kafka import offsets


class SnapshotError(RuntimeError):
    """A topic is missing or did not deliver its records in time."""


def records(bootstrap: str, topic: str, timeout: float = 30.0) -> Iterator[Message]:
    """Every record of ``topic``, partition by partition, in offset order."""
    ranges = offsets.partition_ranges(bootstrap, [topic], timeout=timeout)
    if not ranges:
        raise SnapshotError(
            f"topic {topic} does not exist at {bootstrap}; run 'ecap topics create'"
        )
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "ecap-snapshot",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        for (name, partition), (first, end) in sorted(ranges.items()):
            if end <= first:
                continue
            consumer.assign([TopicPartition(name, partition, first)])
            left = end - first
            while left > 0:
                batch = consumer.consume(num_messages=min(left, 10_000), timeout=timeout)
                if not batch:
                    raise SnapshotError(
                        f"{name}[{partition}] stopped delivering with {left} records to go"
                    )
                for message in batch:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaException(error)
                    left -= 1
                    yield message
    finally:
        consumer.close()
