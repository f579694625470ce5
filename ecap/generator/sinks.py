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
    "allow.auto.create.topics": False,
    "log_level": 2,
}
"""Throughput settings; idempotence keeps each partition in send order across retries, and
murmur2 places keys on the same partitions as the Java client and aiokafka do. A missing
topic is an error, not a topic the broker creates with its default partition count; and
librdkafka's own log (a line per failed connection, twenty a second while the broker is
away) is left out: :class:`KafkaSink` reports what matters."""

BROKER_GONE_S = 10.0
"""How long the broker may stay unreachable before a run stops (see :class:`BrokerGone`)."""
CHECK_EVERY_S = 0.5
AFTER_RESTART = (
    "an embedded broker loses its log when it restarts: run 'ecap up' and 'ecap topics "
    "create', then run the generator again (the workers keep their state; see "
    "docs/operations.md, 'After a broker restart or a recreated topic')"
)
MISSING_TOPIC = (
    "the topic is missing or has fewer partitions than the catalog; run 'ecap topics create'"
)


class SinkError(RuntimeError):
    """The destination cannot take records; the message says what to do."""


class BrokerGone(SinkError):
    """The broker stopped answering in the middle of a run.

    The run stops instead of waiting: the records not acknowledged cannot be sent again
    with their order kept (the idempotent producer's sequence is lost with a restarted
    broker's log, and it never delivers them), and a broker that lost its log needs its
    topics created again first. The message says how many records were acknowledged."""


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
        self._down_since: float | None = None
        self._next_check = time.monotonic() + CHECK_EVERY_S

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
            except KafkaException as exc:
                raise self._failed(exc.args[0]) from exc
        self._sent += 1
        if self._sent % 1000 == 0 or time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + CHECK_EVERY_S
            self._producer.poll(0)
            if self._fatal is not None:
                raise self._failed(self._fatal)
            if self._gone():
                raise BrokerGone(self._gone_message())

    def _failed(self, error: KafkaError) -> SinkError:
        """The producer can send no more. A fatal error right after the broker went away
        is its idempotence state lost with a restarted broker's log."""
        if self._down_since is not None:
            return BrokerGone(f"{self._gone_message()} (the producer failed: {error.str()})")
        return SinkError(f"Kafka producer failed: {error.str()}")

    def close(self, timeout: float = 60.0) -> Delivery:
        """Wait for every outstanding delivery report: at most ``timeout`` seconds, and
        no longer than :data:`BROKER_GONE_S` once the broker has stopped answering."""
        deadline = time.monotonic() + timeout
        remaining = self._producer.flush(0)
        while remaining and time.monotonic() < deadline and not self._gone():
            remaining = self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        if remaining:
            self.delivery.failed += remaining
            reason = (
                f"not acknowledged: the broker at {self.bootstrap} went away; {AFTER_RESTART}"
                if self._gone()
                else f"not acknowledged within {timeout:.0f}s"
            )
            self.delivery.errors[reason] += remaining
        return self.delivery

    def _gone(self) -> bool:
        down = self._down_since
        return down is not None and time.monotonic() - down >= BROKER_GONE_S

    def _gone_message(self) -> str:
        pending = len(self._producer)
        down = 0.0 if self._down_since is None else time.monotonic() - self._down_since
        return (
            f"the broker at {self.bootstrap} went away {down:.0f} s ago (stopped or "
            f"restarted); {self.delivery.total:,} of the {self._sent:,} records "
            f"sent were acknowledged, {pending:,} were not and are dropped; {AFTER_RESTART}"
        )

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self._down_since = None
            self.delivery.delivered[message.topic() or ""] += 1
            return
        self.delivery.failed += 1
        unknown = (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_TOPIC,
            KafkaError._UNKNOWN_PARTITION,
        )
        reason = f"{error.str()}: {MISSING_TOPIC}" if error.code() in unknown else error.str()
        self.delivery.errors[reason] += 1

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("the broker at %s is not answering: %s", self.bootstrap, error.str())
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
