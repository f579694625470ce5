"""The streaming benchmarks' baseline: a plain aiokafka consume → orjson → produce loop.

It reads every record of a topic from the beginning (no consumer group), parses each value
with ``orjson.loads``, serialises it again and produces it to another topic; the broker's
acknowledgements are awaited at the end (the producer's buffer bounds what is in flight).
That is the least a Python stream worker does per record, so a worker's rate is quoted as
a share of this one, measured in the same run on the same broker.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition


async def passthrough(bootstrap: str, source: str, sink: str, records: int) -> tuple[float, float]:
    """Copy the first ``records`` records of ``source`` into ``sink``; returns records/s
    and the CPU time of this process per record (µs)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        acks=1,
        max_batch_size=1024 * 1024,
        compression_type="lz4",
    )
    await consumer.start()
    await producer.start()
    try:
        await consumer.topics()  # loads the metadata
        partitions = [
            TopicPartition(source, p) for p in consumer.partitions_for_topic(source) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        done = 0
        started: float | None = None
        cpu_started = 0.0
        pending: list[asyncio.Future[object]] = []
        while done < records:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batches:
                started = time.perf_counter()
                cpu_started = time.process_time()
            for batch in batches.values():
                for record in batch:
                    value = orjson.dumps(orjson.loads(record.value or b"null"))
                    pending.append(await producer.send(sink, value, key=record.key))
            done = len(pending)
        await asyncio.gather(*pending)
        assert started is not None
        cpu = time.process_time() - cpu_started
        return done / (time.perf_counter() - started), cpu / done * 1e6
    finally:
        await producer.stop()
        await consumer.stop()
