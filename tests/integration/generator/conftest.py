"""A fresh embedded broker (Tansu, memory only) per use, with ECAP's topics created."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.kafka import admin
from ecap.settings import get_settings


@pytest.fixture(scope="module")
def start_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """Starts brokers on free ports (topics created unless ``topics=False``); stops them."""
    entries: list[dict[str, Any]] = []

    def start(*, topics: bool = True) -> str:
        entry = broker.start("127.0.0.1", free_port(), tmp_path_factory.mktemp("kafka"))
        entries.append(entry)
        if topics:
            admin.create_topics(admin.admin_client(entry["address"]))
        return str(entry["address"])

    yield start
    for entry in entries:
        broker.stop(entry)


@pytest.fixture(scope="module")
def use_broker() -> Iterator[Callable[[str], None]]:
    """Points ECAP's settings at a broker address (as ECAP_KAFKA_BOOTSTRAP would)."""
    with pytest.MonkeyPatch.context() as patch:

        def use(address: str) -> None:
            patch.setenv("ECAP_KAFKA_BOOTSTRAP", address)
            get_settings.cache_clear()

        yield use
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def read_back() -> Callable[[str, list[str]], dict[tuple[str, int], list[Any]]]:
    """Reads topics back with an independent client (see :func:`read_partitions`)."""
    return read_partitions


def read_partitions(address: str, topics: list[str]) -> dict[tuple[str, int], list[Any]]:
    """Every record of ``topics``, as (key, value, timestamp) lists per partition, in order."""
    consumer = Consumer(
        {
            "bootstrap.servers": address,
            "group.id": "ecap-generator-tests",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(timeout=10)
    assignment = [
        TopicPartition(topic, partition, 0)
        for topic in topics
        for partition in metadata.topics[topic].partitions
    ]
    consumer.assign(assignment)
    found: dict[tuple[str, int], list[Any]] = {(tp.topic, tp.partition): [] for tp in assignment}
    open_partitions = set(found)
    deadline = time.monotonic() + 60
    while open_partitions and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=1.0):
            where = (message.topic(), message.partition())
            if message.error():
                if message.error().code() == -191:  # _PARTITION_EOF
                    open_partitions.discard(where)
                    continue
                raise RuntimeError(message.error().str())
            found[where].append((message.key(), message.value(), message.timestamp()[1]))
    consumer.close()
    assert not open_partitions, f"partitions never reached their end: {open_partitions}"
    return found
