"""Tansu holds a waiting Fetch even when a record arrives; the workaround caps the wait.

Kafka answers a Fetch as soon as ``min_bytes`` are there. Tansu 0.6.0 keeps a Fetch that
found nothing for a share of its ``max_wait_time`` whatever arrives meanwhile, so with
the 1.5 s wait Faust hard-codes a sparse stream reaches agents up to ~0.7 s late (see
``ecap.patches.aiokafka_tansu``). Each test waits on an empty partition, produces one record
a little later and measures when the consumer gets it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ecap.patches import aiokafka_tansu as tansu_compat

FAUST_FETCH_WAIT_MS = 1500
"""What ``faust.transport.drivers.aiokafka`` gives its consumer, not configurable."""
PRODUCE_AFTER_S = 0.2


async def delivery_delay(bootstrap: str) -> float:
    """Seconds from producing a record into a partition being waited on to receiving it."""
    tp = TopicPartition(f"sparse-{uuid.uuid4().hex[:8]}", 0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=FAUST_FETCH_WAIT_MS,
    )
    await consumer.start()
    try:
        await producer.client._wait_on_metadata(tp.topic)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        await consumer.getmany(timeout_ms=100)  # the fetch loop is now waiting
        await asyncio.sleep(PRODUCE_AFTER_S)
        sent = time.monotonic()
        await producer.send_and_wait(tp.topic, b"x", partition=0)
        while not (await consumer.getmany(tp, timeout_ms=5000)).get(tp):
            pass
        return time.monotonic() - sent
    finally:
        await consumer.stop()
        await producer.stop()


@pytest.fixture
def workaround() -> Iterator[None]:
    tansu_compat.install()
    yield
    tansu_compat.uninstall()


async def test_tansu_delivers_a_record_late_to_a_consumer_waiting_long(
    kafka_bootstrap: str,
) -> None:
    assert not tansu_compat.is_installed()

    delays = [await delivery_delay(kafka_bootstrap) for _ in range(3)]

    assert max(delays) > 0.3, (
        f"records arrived after {delays} s; if Tansu now answers a waiting Fetch when data "
        "arrives, the fetch-wait cap in ecap.patches.aiokafka_tansu can go"
    )


@pytest.mark.usefixtures("workaround")
async def test_workaround_delivers_a_record_within_a_tenth_of_a_second(
    kafka_bootstrap: str,
) -> None:
    delays = [await delivery_delay(kafka_bootstrap) for _ in range(3)]

    assert max(delays) < 0.15, delays
