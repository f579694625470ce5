"""Where generated records go: Kafka (confluent-kafka), JSONL labels, order-history files.

The generators produce :class:`~ecap.generator.wire.Record` values and know nothing of
this module; everything that touches the network, the disk or the wall clock is here.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ecap.generator.wire import Record

log = logging.getLogger(__name__)

PRODUCER_CONFIG: dict[str, Any] = {
    "client.id": "ecap-generator",
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 512 * 1024,
    "enable.idempotence": True,
    "partitioner": "murmur2_random",
}
"""Throughput settings; idempotence keeps each partition in send order across retries, and
murmur2 places keys on the same partitions as the Java client and aiokafka do."""


class SinkError(RuntimeError):
    """The destination cannot take records; the message says what to do."""


@dataclass
class Delivery:
    """What the broker acknowledged."""

    delivered: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.delivered.values())


class KafkaSink:
    """Produces records with delivery reports; :meth:`close` flushes and reports."""

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self.bootstrap = bootstrap
        self.delivery = Delivery()
        self._fatal: KafkaError | None = None
        config = {
            **PRODUCER_CONFIG,
            "bootstrap.servers": bootstrap,
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            "logger": logging.getLogger("ecap.generator.kafka"),
            **overrides,
        }
        self._producer = Producer(config)
        self._produce = self._producer.produce
        self._sent = 0

    def check(self, topics: Iterable[str], timeout: float = 10.0) -> None:
        """Fail early, with advice, when the broker is unreachable or a topic is missing."""
        try:
            metadata = self._producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise SinkError(
                f"Kafka at {self.bootstrap} did not answer within {timeout:.0f}s ({exc}); "
                "start the embedded stack with 'ecap up' or set ECAP_KAFKA_BOOTSTRAP"
            ) from exc
        missing = sorted(set(topics) - set(metadata.topics))
        if missing:
            raise SinkError(
                f"topic(s) {', '.join(missing)} do not exist on {self.bootstrap}; "
                "create them with 'ecap topics create'"
            )

    def send(self, record: Record) -> None:
        while True:
            try:
                self._produce(record.topic, record.value, record.key, timestamp=record.timestamp_ms)
                break
            except BufferError:
                self._producer.poll(0.05)  # the local queue is full: let it drain
        self._sent += 1
        if self._sent % 1000 == 0:
            self._producer.poll(0)
            if self._fatal is not None:
                raise SinkError(f"Kafka producer failed: {self._fatal.str()}")

    def close(self, timeout: float = 60.0) -> Delivery:
        """Wait for every outstanding delivery report (at most ``timeout`` seconds)."""
        remaining = self._producer.flush(timeout)
        if remaining:
            self.delivery.failed += remaining
            self.delivery.errors[f"not acknowledged within {timeout:.0f}s"] += remaining
        return self.delivery

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivery.delivered[message.topic() or ""] += 1
        else:
            self.delivery.failed += 1
            self.delivery.errors[error.str()] += 1

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        else:
            log.debug("kafka: %s", error.str())


class LabelsFile:
    """Fraud labels as JSON lines, the same bytes as on the ``fraud-labels`` topic."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("wb")

    def write(self, value: bytes) -> None:
        self._file.write(value)
        self._file.write(b"\n")
        self.count += 1

    def close(self) -> None:
        self._file.close()


class Pacer:
    """Holds records back until the wall clock catches up with their simulated time.

    With ``real_time`` the simulated start is a real instant (``--start now``), so a
    record is due when the wall clock reaches its event time (scaled): event times then
    track the clock even though generating the first record takes a moment. Otherwise the
    simulated start maps to the moment the first record is ready.
    """

    def __init__(
        self,
        start_ms: int,
        time_scale: float,
        *,
        real_time: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._start_ms = start_ms
        self._per_ms = 1.0 / (1000.0 * time_scale)
        self._clock = clock
        self._sleep = sleep
        self._wall0: float | None = start_ms / 1000.0 if real_time else None
        self._began = clock()

    def wait(self, timestamp_ms: int) -> None:
        now = self._clock()
        if self._wall0 is None:
            self._wall0 = now
        ahead = self._wall0 + (timestamp_ms - self._start_ms) * self._per_ms - now
        if ahead > 0.002:
            self._sleep(ahead)

    def elapsed(self) -> float:
        """Wall-clock seconds since the pacer was made."""
        return self._clock() - self._began


HISTORY_FORMATS = (".parquet", ".csv")


def write_table(table: pa.Table, path: Path) -> None:
    """Write the order history as parquet or CSV, chosen by the file suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, path, compression="zstd")
    elif suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        raise SinkError(f"{path}: unknown format; use a .parquet or .csv file name")
