"""The workaround gives aiokafka the true end of a partition; without it Tansu's is short.

Tansu 0.6.0 answers ListOffsets(latest) with the offset just past the first record of the
partition's last batch. These tests write batches of known sizes and ask for the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ecap.patches import aiokafka_tansu as tansu_compat

pytestmark = pytest.mark.integration

BATCHES = (3, 1, 20)
"""Offsets 0-2, 3, 4-23: the true end is 24, Tansu reports 5."""


@pytest.fixture
async def partition_with_batches(tansu_bootstrap: str) -> TopicPartition:
    """A new one-partition topic holding ``BATCHES``, each sent as one record batch."""
    tp = TopicPartition(f"batches-{uuid.uuid4().hex[:8]}", 0)
    producer = AIOKafkaProducer(bootstrap_servers=tansu_bootstrap, linger_ms=100)
    await producer.start()
    try:
        for size in BATCHES:
            sends = [
                await producer.send(tp.topic, b"x", partition=tp.partition) for _ in range(size)
            ]
            await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return tp


@pytest.fixture
async def consumer(tansu_bootstrap: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(bootstrap_servers=tansu_bootstrap, enable_auto_commit=False)
    await consumer.start()
    yield consumer
    await consumer.stop()


@pytest.fixture
def workaround() -> Iterator[None]:
    tansu_compat.install()
    yield
    tansu_compat.uninstall()


async def test_tansu_reports_the_end_of_the_first_record_of_the_last_batch(
    consumer: AIOKafkaConsumer, partition_with_batches: TopicPartition
) -> None:
    assert not tansu_compat.is_installed()

    ends = await consumer.end_offsets([partition_with_batches])

    assert ends[partition_with_batches] == sum(BATCHES[:-1]) + 1, (
        "Tansu's ListOffsets answer changed; if it is now the true end "
        f"({sum(BATCHES)}), ecap.patches.aiokafka_tansu can go"
    )


@pytest.mark.usefixtures("workaround")
async def test_workaround_gives_end_offsets_the_true_end(
    consumer: AIOKafkaConsumer, partition_with_batches: TopicPartition
) -> None:
    ends = await consumer.end_offsets([partition_with_batches])

    assert ends == {partition_with_batches: sum(BATCHES)}


@pytest.mark.usefixtures("workaround")
async def test_workaround_makes_seek_to_end_land_after_the_last_record(
    consumer: AIOKafkaConsumer, partition_with_batches: TopicPartition
) -> None:
    consumer.assign([partition_with_batches])
    await consumer.seek_to_end(partition_with_batches)

    assert await consumer.position(partition_with_batches) == sum(BATCHES)


@pytest.mark.usefixtures("workaround")
async def test_workaround_leaves_beginning_offsets_and_empty_partitions_alone(
    consumer: AIOKafkaConsumer, partition_with_batches: TopicPartition, tansu_bootstrap: str
) -> None:
    empty = TopicPartition(f"empty-{uuid.uuid4().hex[:8]}", 0)
    producer = AIOKafkaProducer(bootstrap_servers=tansu_bootstrap)
    await producer.start()
    try:
        await producer.client._wait_on_metadata(empty.topic)
    finally:
        await producer.stop()

    assert await consumer.beginning_offsets([partition_with_batches]) == {partition_with_batches: 0}
    assert await consumer.end_offsets([empty]) == {empty: 0}


def test_install_and_uninstall_are_idempotent() -> None:
    tansu_compat.install()
    tansu_compat.install()
    assert tansu_compat.is_installed()
    tansu_compat.uninstall()
    tansu_compat.uninstall()
    assert not tansu_compat.is_installed()
