"""An aiokafka producer and consumer asking about topics that do not exist, on the embedded
broker, with and without ``ecap.patches.aiokafka_no_auto_create``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from ecap.kafka import admin
from ecap.patches import aiokafka_no_auto_create

pytestmark = pytest.mark.integration


@pytest.fixture
def patched() -> Iterator[None]:
    aiokafka_no_auto_create.install()
    try:
        yield
    finally:
        aiokafka_no_auto_create.uninstall()


async def _ask_about(bootstrap: str, topic: str) -> None:
    """What a worker does with its topics: consume one and produce to it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"g-{topic}")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await consumer.start()
    await producer.start()
    try:
        consumer.subscribe([topic])
        await asyncio.sleep(1.0)
        with contextlib.suppress(KafkaError, TimeoutError):  # the topic may well be missing
            await asyncio.wait_for(producer.send_and_wait(topic, b"x"), 4)
    finally:
        await producer.stop()
        await consumer.stop()


def _exists(bootstrap: str, topic: str) -> bool:
    return topic in admin.admin_client(bootstrap).list_topics(timeout=10).topics


def test_without_the_patch_asking_about_a_topic_creates_it(kafka_bootstrap: str) -> None:
    topic = f"asked-{uuid.uuid4().hex[:8]}"
    asyncio.run(_ask_about(kafka_bootstrap, topic))
    assert _exists(kafka_bootstrap, topic)


@pytest.mark.usefixtures("patched")
def test_with_the_patch_a_missing_topic_stays_missing(kafka_bootstrap: str) -> None:
    topic = f"asked-{uuid.uuid4().hex[:8]}"
    asyncio.run(_ask_about(kafka_bootstrap, topic))
    assert not _exists(kafka_bootstrap, topic)
