"""A KPI deployment under test: a fresh embedded broker, the catalog topics, and worker
processes started by ``ecap.workers_launcher`` exactly as ``make demo`` starts them.

The tests talk to the workers only through Kafka (records in, ``analytics-results`` and
dead letters out) and their web views.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from ecap import auth, workers_launcher
from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.generator.sinks import KafkaSink
from ecap.generator.wire import Record
from ecap.kafka import admin, offsets
from ecap.settings import Settings
from ecap.topics import ANALYTICS_RESULTS, BY_NAME, TRANSACTIONS, USER_EVENTS

SOURCES = {"transactions": TRANSACTIONS, "user-events": USER_EVENTS}
READY_TIMEOUT = 120.0
PROCESS_TIMEOUT = 180.0


@dataclass
class Deployment:
    home: Path
    instances: int
    broker_entry: dict[str, Any] = field(default_factory=dict)
    workers: dict[str, list[workers_launcher.WorkerProcess]] = field(default_factory=dict)
    results: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    _results_reader: Consumer | None = None

    @property
    def bootstrap(self) -> str:
        return str(self.broker_entry["address"])

    @property
    def settings(self) -> Settings:
        return Settings(home=self.home, kafka_bootstrap=None)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.broker_entry = broker.start("127.0.0.1", free_port(), self.home)
        (self.home / "stack.json").write_text(json.dumps({"kafka": self.broker_entry}))
        admin.create_topics(admin.admin_client(self.bootstrap), replication=1)
        for name in SOURCES:
            self.workers[name] = [
                workers_launcher.start(
                    name,
                    instance,
                    web_port=free_port(),
                    settings=self.settings,
                    env={"ECAP_KAFKA_BOOTSTRAP": ""},
                )
                for instance in range(self.instances)
            ]
        self.wait_until_assigned()

    def close(self) -> None:
        if self._results_reader is not None:
            self._results_reader.close()
        workers_launcher.stop(self.settings)
        if self.broker_entry:
            broker.stop(self.broker_entry)

    def logs(self) -> str:
        tails = []
        for worker in (w for ws in self.workers.values() for w in ws):
            text = worker.log.read_text(errors="replace") if worker.log.exists() else ""
            tails.append(f"--- {worker.name}-{worker.instance}\n{text[-3000:]}")
        return "\n".join(tails)

    def check_alive(self) -> None:
        for worker in (w for ws in self.workers.values() for w in ws):
            if not worker.running:
                raise AssertionError(f"{worker.name}-{worker.instance} died:\n{self.logs()}")

    # ------------------------------------------------------------------ views

    def get(
        self, worker: workers_launcher.WorkerProcess, path: str, *, token: bool = True
    ) -> tuple[int, Any]:
        """Status and JSON body of a view, asked with the API token unless ``token`` is
        false."""
        headers = auth.header(self.settings) if token else {}
        request = urllib.request.Request(worker.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def health(self, worker: workers_launcher.WorkerProcess) -> dict[str, Any] | None:
        try:
            status, body = self.get(worker, "/health/")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        return body if status == 200 else None

    def wait_until_assigned(self) -> None:
        """Every worker is up, and each worker kind holds every partition exactly once."""
        deadline = time.monotonic() + READY_TIMEOUT
        stable = 0
        while stable < 3:
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"workers not assigned in {READY_TIMEOUT} s:\n{self.logs()}")
            time.sleep(0.5)
            good = True
            for name, source in SOURCES.items():
                held: list[int] = []
                for worker in self.workers[name]:
                    body = self.health(worker)
                    if body is None:
                        good = False
                        break
                    held += body["held_partitions"]
                if sorted(held) != list(range(BY_NAME[source].partitions)):
                    good = False
            stable = stable + 1 if good else 0

    # ------------------------------------------------------------------ records in

    def send(self, records: Iterable[Record]) -> None:
        sink = KafkaSink(self.bootstrap, **{"message.max.bytes": 10_000_000})
        for record in records:
            sink.send(record)
        delivery = sink.close()
        assert delivery.failed == 0, f"records not delivered: {dict(delivery.errors)}"

    def input_ends(self, topic: str) -> dict[int, int]:
        ranges = offsets.partition_ranges(self.bootstrap, [topic])
        return {p: end for (_, p), (_, end) in ranges.items()}

    def wait_until_processed(self, timeout: float = PROCESS_TIMEOUT) -> None:
        """Every worker's ledger holds every input record sent so far."""
        wanted = {
            name: {str(p): end - 1 for p, end in self.input_ends(source).items() if end > 0}
            for name, source in SOURCES.items()
        }
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            seen = {
                (name, worker.instance): (self.health(worker) or {}).get("as_of", {}).get("applied")
                for name in SOURCES
                for worker in self.workers[name]
            }
            if all(seen[key] == wanted[key[0]] for key in seen):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not processed in {timeout} s: want {wanted}, have {seen}\n{self.logs()}"
                )
            time.sleep(0.5)

    # ------------------------------------------------------------------ records out

    def read_results(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The latest ``analytics-results`` record per (metric, window, start, dimension,
        value), reading on from where the last call stopped."""
        if self._results_reader is None:
            self._results_reader = Consumer(
                {"bootstrap.servers": self.bootstrap, "group.id": "results-reader"}
            )
            partitions = BY_NAME[ANALYTICS_RESULTS].partitions
            self._results_reader.assign(
                [TopicPartition(ANALYTICS_RESULTS, p, 0) for p in range(partitions)]
            )
        while True:
            messages = self._results_reader.consume(num_messages=10_000, timeout=1.0)
            if not messages:
                return self.results
            for message in messages:
                assert message.error() is None, message.error()
                result = json.loads(message.value() or b"{}")
                key = (
                    result["metric"],
                    result["window"],
                    result["window_start"],
                    result["dimension"],
                    result["dimension_value"],
                )
                self.results[key] = result

    def wait_for_finals(
        self,
        windows: set[tuple[str, int, str]],
        key: Callable[[str], int],
        timeout: float = PROCESS_TIMEOUT,
    ) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Wait until every (window kind, start, metric) given has a final result; return
        every final result. ``key`` turns a result's ``window_start`` into those starts."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            results = self.read_results()
            final = {(k[1], key(k[2]), k[0]) for k, r in results.items() if r["final"]}
            if windows <= final:
                return {k: r for k, r in results.items() if r["final"]}
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no final results in {timeout} s for {sorted(windows - final)[:5]}"
                    f"\n{self.logs()}"
                )
            time.sleep(1.0)

    def read_topic(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        """Every record of ``topic`` now, as (key, value)."""
        ends = self.input_ends(topic)
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{topic}",
                "fetch.message.max.bytes": 20_000_000,
            }
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        records: list[tuple[bytes | None, bytes]] = []
        try:
            deadline = time.monotonic() + 30
            while len(records) < sum(ends.values()) and time.monotonic() < deadline:
                for message in consumer.consume(num_messages=1000, timeout=0.5):
                    assert message.error() is None, message.error()
                    records.append((message.key(), message.value() or b""))
        finally:
            consumer.close()
        return records
