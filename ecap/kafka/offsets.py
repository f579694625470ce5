"""The true offset range of each partition, on any broker, the embedded one included.

The embedded broker reports as "latest" the base offset of the last record batch, not the
offset after the last record. Fetch responses are right, so the true end is found by
reading from the reported end until the partition's end-of-file event, then taking the
cached high watermark. On a correct broker that read returns nothing at once.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, TopicPartition

Ranges = dict[tuple[str, int], tuple[int, int]]


def partition_ranges(bootstrap: str, topics: list[str], timeout: float = 15.0) -> Ranges:
    """``(topic, partition) -> (first offset, end offset)`` for every partition of ``topics``.

    A partition holds ``end - first`` records. Topics that do not exist are left out.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "ecap-offsets",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=timeout).topics
        reported: Ranges = {}
        for topic in topics:
            if topic not in metadata:
                continue
            for partition in sorted(metadata[topic].partitions):
                tp = TopicPartition(topic, partition)
                reported[(topic, partition)] = consumer.get_watermark_offsets(tp, timeout=timeout)
        return _read_to_eof(consumer, reported, timeout)
    finally:
        consumer.close()


def _read_to_eof(consumer: Consumer, reported: Ranges, timeout: float) -> Ranges:
    if not reported:
        return {}
    consumer.assign([TopicPartition(t, p, max(high, 0)) for (t, p), (_, high) in reported.items()])
    last_seen = {key: high - 1 for key, (_, high) in reported.items()}
    pending = set(reported)
    ends: dict[tuple[str, int], int] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        key = (str(message.topic()), int(message.partition()))  # type: ignore[arg-type]
        error = message.error()
        if error is None:
            last_seen[key] = int(message.offset())  # type: ignore[arg-type]
        elif error.code() == KafkaError._PARTITION_EOF:
            tp = TopicPartition(*key)
            ends[key] = max(consumer.get_watermark_offsets(tp, cached=True)[1], last_seen[key] + 1)
            pending.discard(key)
        else:
            raise RuntimeError(f"reading {key[0]}[{key[1]}]: {error.str()}")
    if pending:
        raise TimeoutError(f"no end-of-partition within {timeout} s for {sorted(pending)}")
    return {key: (reported[key][0], ends[key]) for key in reported}


def record_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Records each existing topic holds now (end - first, summed over its partitions)."""
    counts: dict[str, int] = {}
    for (topic, _), (first, end) in partition_ranges(bootstrap, topics).items():
        counts[topic] = counts.get(topic, 0) + end - first
    return counts
