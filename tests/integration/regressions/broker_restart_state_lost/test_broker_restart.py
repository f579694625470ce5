"""A real broker restart under a running transactions worker, then a worker restart and a
kill -9: no user's fraud state and no KPI count is lost.

One scenario runs once for the module (:func:`scenario`), on a fixed-seed stream cut in
three: part A is processed, the embedded broker is stopped and started again on the same
port (its log is gone) and the catalog created again, part B is processed by the same
worker, the worker is stopped and started, part C is sent while the worker is killed with
SIGKILL and started again. The tests compare what the last worker holds with what an
uninterrupted run of the same records gives, computed here the way the worker computes it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from ecap import auth, workers_launcher
from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.events import Transaction, TransactionType, decode
from ecap.fraud.detector import Detector
from ecap.fraud.merchant import MerchantStats
from ecap.fraud.rules import load_default_rules
from ecap.fraud.state import UserState
from ecap.generator.stream import Stream, StreamConfig
from ecap.generator.wire import Record
from ecap.kafka import admin, offsets, snapshot
from ecap.settings import Settings
from ecap.topics import BY_NAME, TRANSACTIONS
from tables.user_state import USER_STATE, partition_for

pytestmark = pytest.mark.integration

PARTITIONS = BY_NAME[TRANSACTIONS].partitions
USER_STATE_CHANGELOG = f"ecap-transactions-{USER_STATE}-changelog"
SALES_LEDGER = "ecap-transactions-sales-ledger"
TIMEOUT_S = 90.0
MINUTE_MS = 60_000


# ---------------------------------------------------------------------- the stream


@pytest.fixture(scope="module")
def stream() -> list[Record]:
    """About 1,200 transactions of 300 customers, in the order they are sent."""
    config = StreamConfig(rate=5000, duration=12, seed=29, fraud_rate=0.05, customers=300)
    return [r for r in Stream(config).records() if r.topic == TRANSACTIONS]


def uninterrupted_states(records: Sequence[Record]) -> dict[str, bytes]:
    """Every user's fraud state after an uninterrupted run: each partition's detector
    over its records in order, as one worker runs it."""
    detectors: dict[int, Detector] = {}
    users: dict[str, UserState] = {}
    merchants: dict[tuple[int, str], MerchantStats] = {}
    for record in records:
        tx = decode(Transaction, record.value)
        partition = partition_for(tx.user_id)
        detector = detectors.setdefault(partition, Detector(load_default_rules()))
        detector.process(
            tx,
            users.setdefault(tx.user_id, UserState()),
            merchants.setdefault((partition, tx.merchant_id), MerchantStats()),
        )
    return {user: state.to_bytes() for user, state in users.items()}


def orders_per_minute(records: Sequence[Record]) -> dict[int, int]:
    """The sales KPI ``orders`` of each event-time minute: purchases, once per id."""
    seen: set[str] = set()
    orders: Counter[int] = Counter()
    for record in records:
        tx = decode(Transaction, record.value)
        if tx.type is TransactionType.PURCHASE and tx.transaction_id not in seen:
            seen.add(tx.transaction_id)
            orders[int(tx.event_time.timestamp() * 1000) // MINUTE_MS * MINUTE_MS] += 1
    return dict(orders)


# ---------------------------------------------------------------------- the deployment


@dataclass
class Deployment:
    """An embedded broker on a fixed port and one transactions worker, seen from outside."""

    home: Path
    port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    broker_entry: dict[str, Any] = field(default_factory=dict)
    worker: workers_launcher.WorkerProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def settings(self) -> Settings:
        return Settings(home=self.home, kafka_bootstrap=None)

    def start_broker(self) -> None:
        """``ecap up`` and ``ecap topics create``."""
        self.broker_entry = broker.start("127.0.0.1", self.port, self.home)
        (self.home / "stack.json").write_text(json.dumps({"kafka": self.broker_entry}))
        admin.create_topics(admin.admin_client(self.bootstrap), replication=1)

    def restart_broker(self) -> None:
        broker.stop(self.broker_entry)
        self.start_broker()

    def start_worker(self) -> None:
        self.worker = workers_launcher.start(
            "transactions",
            0,
            web_port=self.web_port,
            settings=self.settings,
            env={"ECAP_KAFKA_BOOTSTRAP": ""},
        )

    def stop_worker(self) -> None:
        workers_launcher.stop(self.settings)

    def kill_worker(self) -> None:
        assert self.worker is not None
        os.kill(self.worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.worker.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.worker.running, "the worker survived SIGKILL"

    def close(self) -> None:
        self.stop_worker()
        if self.broker_entry:
            broker.stop(self.broker_entry)

    def log(self) -> str:
        assert self.worker is not None
        return self.worker.log.read_text(errors="replace")[-6000:]

    def check_alive(self) -> None:
        assert self.worker is not None
        if not self.worker.running:
            raise AssertionError(f"the transactions worker died:\n{self.log()}")

    # ------------------------------------------------------------------ views

    def view(self, path: str) -> Any:
        assert self.worker is not None
        request = urllib.request.Request(self.worker.url + path, headers=auth.header(self.settings))
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                body = answer.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        return body if path.startswith("/metrics") else json.loads(body)

    def wait(self, what: str, done: Any) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not done():
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not within {TIMEOUT_S} s:\n{self.log()}")
            time.sleep(0.3)

    def wait_until_assigned(self) -> None:
        def assigned() -> bool:
            view = self.view("/fraud/detector/") or {}
            return bool(view.get("control_caught_up")) and view.get("held_partitions") == list(
                range(PARTITIONS)
            )

        self.wait("every partition assigned", assigned)

    def repaired(self) -> set[str]:
        """The topics whose reset logs the worker has repaired so far."""
        health = self.view("/health") or {}
        return {reset["topic"] for reset in health.get("log_resets", {}).get("latest", [])}

    def wait_until_repaired(self, topics: set[str]) -> None:
        self.wait(f"{sorted(topics)} repaired", lambda: topics <= self.repaired())

    def processed(self) -> dict[int, int]:
        """Per partition, the last offset both the fraud agent and the sales KPIs took."""
        fraud = (self.view("/fraud/detector/") or {}).get("processed", {})
        sales = ((self.view("/health") or {}).get("as_of") or {}).get("applied", {})
        return {
            int(p): min(offset, sales.get(p, -1)) for p, offset in fraud.items() if str(p) in sales
        }

    def wait_until_processed(self) -> None:
        ranges = offsets.partition_ranges(self.bootstrap, [TRANSACTIONS])
        wanted = {p: end - 1 for (_, p), (_, end) in ranges.items() if end > 0}

        def done() -> bool:
            have = self.processed()
            return all(have.get(p, -1) >= last for p, last in wanted.items())

        self.wait(f"records processed up to {wanted}", done)

    # ------------------------------------------------------------------ records

    def send(self, records: Sequence[Record]) -> None:
        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
        )
        for record in records:
            producer.produce(
                record.topic, key=record.key, value=record.value, timestamp=record.timestamp_ms
            )
        assert producer.flush(30) == 0, "records not delivered to the broker"

    def changelog_states(self) -> dict[str, bytes]:
        """The latest changelog value of each user's state: what a restart recovers."""
        states: dict[str, bytes] = {}
        for message in snapshot.records(self.bootstrap, USER_STATE_CHANGELOG):
            key, value = message.key(), message.value()
            if key is not None and value is not None:
                states[key.decode()] = value
        return states


@dataclass
class Outcome:
    """What the scenario left, read from outside."""

    health_after_broker_restart: dict[str, Any]
    metrics_after_broker_restart: str
    changelog_states: dict[str, bytes]
    orders: dict[int, int]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, stream: list[Record]) -> Iterator[Outcome]:
    made = Deployment(tmp_path_factory.mktemp("broker-restart"))
    a, b, c = (
        stream[: len(stream) * 4 // 10],
        stream[len(stream) * 4 // 10 : len(stream) * 7 // 10],
        stream[len(stream) * 7 // 10 :],
    )
    try:
        made.start_broker()
        made.start_worker()
        made.wait_until_assigned()
        made.send(a)
        made.wait_until_processed()

        made.restart_broker()
        made.wait_until_repaired({USER_STATE_CHANGELOG, SALES_LEDGER})
        made.wait_until_assigned()
        made.send(b)
        made.wait_until_repaired({TRANSACTIONS})
        made.wait_until_processed()
        health = made.view("/health")
        metrics = made.view("/metrics").decode()

        made.stop_worker()
        made.start_worker()
        made.wait_until_assigned()
        sender = threading.Thread(target=_send_in_chunks, args=(made, c))
        sender.start()
        before = sum(o + 1 for o in made.processed().values())
        made.wait(
            "part C being processed",
            lambda: sum(o + 1 for o in made.processed().values()) > before + len(c) // 3,
        )
        made.kill_worker()
        sender.join()
        made.start_worker()
        made.wait_until_assigned()
        made.wait_until_processed()

        series = made.view("/kpis/timeseries?metric=orders&window=tumbling_1m&dimension=all")
        orders = {
            int(window["start"]): int(window["values"].get("all", 0)) for window in series["series"]
        }
        yield Outcome(health, metrics, made.changelog_states(), orders)
    finally:
        made.close()


def _send_in_chunks(deployment: Deployment, records: Sequence[Record]) -> None:
    for start in range(0, len(records), 40):
        deployment.send(records[start : start + 40])
        time.sleep(0.1)


# ---------------------------------------------------------------------- the checks


def test_every_users_fraud_state_equals_an_uninterrupted_runs(
    scenario: Outcome, stream: list[Record]
) -> None:
    expected = uninterrupted_states(stream)
    assert set(scenario.changelog_states) == set(expected)
    differing = sorted(u for u, state in expected.items() if scenario.changelog_states[u] != state)
    assert differing == []


def test_the_sales_kpis_count_every_order_once(scenario: Outcome, stream: list[Record]) -> None:
    assert scenario.orders == orders_per_minute(stream)


def test_health_says_degraded_and_names_the_repaired_logs(scenario: Outcome) -> None:
    health = scenario.health_after_broker_restart
    assert health["status"] == "degraded"
    repaired = {reset["topic"] for reset in health["log_resets"]["latest"]}
    assert {USER_STATE_CHANGELOG, TRANSACTIONS, SALES_LEDGER} <= repaired


def test_the_resets_are_counted_in_the_metrics(scenario: Outcome) -> None:
    line = f'ecap_log_resets_total{{topic="{USER_STATE_CHANGELOG}"}} {float(PARTITIONS)}'
    assert line in scenario.metrics_after_broker_restart
