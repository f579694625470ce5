"""Fraud deployments under test: a fresh embedded broker and PostgreSQL database per module,
the catalog topics, the schema migrated, and ``ecap worker transactions`` / ``ecap worker
alerts`` processes started by ``ecap.workers_launcher`` as ``make demo`` starts them.

One fixed-seed generated stream (with 5% fraud so a short run holds every scenario) is
shared by the modules, and so is what the detector decides on it when run offline in this
process, partition by partition, exactly as a worker does: :func:`reference_alerts`.
Workers are deterministic per partition, so any number of them must raise those alerts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from confluent_kafka import Producer

from ecap import auth, events, workers_launcher
from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.events import DeadLetter, FraudAlert, FraudLabel, Transaction, decode
from ecap.fraud.detector import Detector
from ecap.fraud.merchant import MerchantStats
from ecap.fraud.rules import load_default_rules
from ecap.fraud.state import UserState
from ecap.generator.stream import Stream, StreamConfig
from ecap.generator.wire import Record
from ecap.kafka import admin, offsets, snapshot
from ecap.settings import Settings
from ecap.topics import BY_NAME, FRAUD_ALERTS, FRAUD_LABELS, TRANSACTIONS, dlq
from tables.user_state import USER_STATE, partition_for

SEED = 11
READY_TIMEOUT = 120.0
PROCESS_TIMEOUT = 120.0
PARTITIONS = BY_NAME[TRANSACTIONS].partitions
USER_STATE_CHANGELOG = f"ecap-transactions-{USER_STATE}-changelog"


# ---------------------------------------------------------------------- the stream


@dataclass(frozen=True)
class Dataset:
    transactions: list[Record]
    labels: list[FraudLabel]

    def by_user(self) -> dict[str, set[str]]:
        users: dict[str, set[str]] = {}
        for record in self.transactions:
            value = orjson.loads(record.value)
            users.setdefault(value["user_id"], set()).add(value["transaction_id"])
        return users


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    """About 2,000 transactions of 300 customers, 5% of purchases fraud, every scenario."""
    config = StreamConfig(rate=5000, duration=20, seed=SEED, fraud_rate=0.05, customers=300)
    transactions, labels = [], []
    for record in Stream(config).records():
        if record.topic == TRANSACTIONS:
            transactions.append(record)
        elif record.topic == FRAUD_LABELS:
            labels.append(decode(FraudLabel, record.value))
    return Dataset(transactions, labels)


def reference_alerts(records: Iterable[Record]) -> set[str]:
    """Transaction ids the detector alerts on, run here as one worker runs it."""
    detectors: dict[int, Detector] = {}
    users: dict[str, UserState] = {}
    merchants: dict[tuple[int, str], MerchantStats] = {}
    alerted = set()
    for record in records:
        tx = decode(Transaction, record.value)
        partition = partition_for(tx.user_id)
        detector = detectors.setdefault(partition, Detector(load_default_rules()))
        decision = detector.process(
            tx,
            users.setdefault(tx.user_id, UserState()),
            merchants.setdefault((partition, tx.merchant_id), MerchantStats()),
        )
        if decision is not None and decision.fired:
            alerted.add(tx.transaction_id)
    return alerted


@pytest.fixture(scope="session")
def expected_alerts(dataset: Dataset) -> set[str]:
    return reference_alerts(dataset.transactions)


# ---------------------------------------------------------------------- PostgreSQL


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


# ---------------------------------------------------------------------- deployment


@dataclass
class FraudDeployment:
    """A broker, a database and the fraud workers; the tests see them only from outside."""

    home: Path
    dsn: str
    broker_entry: dict[str, Any] = field(default_factory=dict)
    workers: list[workers_launcher.WorkerProcess] = field(default_factory=list)
    sink: workers_launcher.WorkerProcess | None = None

    @property
    def bootstrap(self) -> str:
        return str(self.broker_entry["address"])

    @property
    def settings(self) -> Settings:
        return Settings(home=self.home, kafka_bootstrap=None, postgres_dsn=self.dsn)

    @property
    def env(self) -> dict[str, str]:
        return {"ECAP_KAFKA_BOOTSTRAP": "", "ECAP_POSTGRES_DSN": self.dsn}

    # ------------------------------------------------------------------ lifecycle

    def start(self, instances: int = 1) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.broker_entry = broker.start("127.0.0.1", free_port(), self.home)
        (self.home / "stack.json").write_text(json.dumps({"kafka": self.broker_entry}))
        admin.create_topics(admin.admin_client(self.bootstrap), replication=1)
        self.sink = self._launch("alerts", 0)
        for instance in range(instances):
            self.workers.append(self._launch("transactions", instance))
        self.wait_until_assigned()

    def _launch(self, name: str, instance: int) -> workers_launcher.WorkerProcess:
        return workers_launcher.start(
            name, instance, web_port=free_port(), settings=self.settings, env=self.env
        )

    def close(self) -> None:
        workers_launcher.stop(self.settings)
        if self.broker_entry:
            broker.stop(self.broker_entry)

    def kill(self, worker: workers_launcher.WorkerProcess) -> None:
        """SIGKILL a transactions worker (as a crash would) and wait until it is gone."""
        os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while worker.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not worker.running, f"worker {worker.pid} survived SIGKILL"

    def restart(self, worker: workers_launcher.WorkerProcess) -> workers_launcher.WorkerProcess:
        started = self._launch(worker.name, worker.instance)
        self.workers = [started if w.instance == worker.instance else w for w in self.workers]
        return started

    def logs(self) -> str:
        tails = []
        for worker in [*self.workers, *([self.sink] if self.sink else [])]:
            text = worker.log.read_text(errors="replace") if worker.log.exists() else ""
            tails.append(f"--- {worker.name}-{worker.instance}\n{text[-4000:]}")
        return "\n".join(tails)

    def log(self, worker: workers_launcher.WorkerProcess) -> str:
        return worker.log.read_text(errors="replace") if worker.log.exists() else ""

    def check_alive(self) -> None:
        for worker in [*self.workers, *([self.sink] if self.sink else [])]:
            if not worker.running:
                raise AssertionError(f"{worker.name}-{worker.instance} died:\n{self.logs()}")

    # ------------------------------------------------------------------ views

    def detector(self, worker: workers_launcher.WorkerProcess) -> dict[str, Any] | None:
        try:
            request = urllib.request.Request(
                worker.url + "/fraud/detector/", headers=auth.header(self.settings)
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                body: dict[str, Any] = json.loads(answer.read())
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None

    def wait_until_assigned(self, timeout: float = READY_TIMEOUT) -> None:
        """Every transactions worker answers, has read the control topics, and together
        they hold every partition exactly once (three polls in a row)."""
        deadline = time.monotonic() + timeout
        stable = 0
        while stable < 3:
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"workers not assigned in {timeout} s:\n{self.logs()}")
            time.sleep(0.5)
            views = [self.detector(worker) for worker in self.workers]
            held = sorted(p for view in views if view for p in view["held_partitions"])
            ready = all(view and view["control_caught_up"] for view in views)
            stable = stable + 1 if ready and held == list(range(PARTITIONS)) else 0

    # ------------------------------------------------------------------ records in

    def send(self, records: Iterable[Record]) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "linger.ms": 5,
                "partitioner": "murmur2_random",
                "message.max.bytes": 4_000_000,
            }
        )
        for record in records:
            producer.produce(
                record.topic, key=record.key, value=record.value, timestamp=record.timestamp_ms
            )
        assert producer.flush(30) == 0, "records not delivered to the broker"

    def send_raw(self, values: Iterable[bytes], key: bytes = b"fuzz") -> None:
        self.send(Record(TRANSACTIONS, key, value, int(time.time() * 1000)) for value in values)

    def wait_until_processed(self, timeout: float = PROCESS_TIMEOUT) -> None:
        """The workers have processed every transaction record sent so far."""
        ranges = offsets.partition_ranges(self.bootstrap, [TRANSACTIONS])
        wanted = {str(p): end - 1 for (_, p), (_, end) in ranges.items() if end > 0}
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            seen: dict[str, int] = {}
            for worker in self.workers:
                seen.update((self.detector(worker) or {}).get("processed", {}))
            if all(seen.get(p, -1) >= offset for p, offset in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not processed in {timeout} s: want {wanted}, have {seen}\n{self.logs()}"
                )
            time.sleep(0.3)

    # ------------------------------------------------------------------ records out

    def alerts(self) -> list[FraudAlert]:
        return [
            decode(FraudAlert, m.value() or b"")
            for m in snapshot.records(self.bootstrap, FRAUD_ALERTS)
        ]

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters so far (read without ``decode``'s size limit: the letter of an
        oversized record carries it base64-encoded, a third larger)."""
        return [
            DeadLetter.model_validate_json(m.value() or b"")
            for m in snapshot.records(self.bootstrap, dlq(TRANSACTIONS))
        ]

    def user_states(self) -> dict[str, UserState]:
        """The latest changelog value of each user's state: what a restart recovers."""
        states: dict[str, UserState] = {}
        for message in snapshot.records(self.bootstrap, USER_STATE_CHANGELOG):
            key, value = message.key(), message.value()
            if key is not None and value is not None:
                states[key.decode()] = UserState.from_bytes(value)
        return states

    def cases(self) -> list[asyncpg.Record]:
        return asyncio.run(
            fetch(self.dsn, "SELECT transaction_id, alert_id, status FROM fraud_cases")
        )

    def wait_for_cases(self, transaction_ids: set[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            have = {row["transaction_id"] for row in self.cases()}
            if transaction_ids <= have:
                return
            if time.monotonic() > deadline:
                missing = sorted(transaction_ids - have)[:10]
                raise AssertionError(f"cases missing after {timeout} s: {missing}\n{self.logs()}")
            time.sleep(0.3)


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, database: str
) -> Iterator[FraudDeployment]:
    """One transactions worker and one alerts worker, shared by a module's tests."""
    made = FraudDeployment(tmp_path_factory.mktemp("fraud"), database)
    try:
        made.start(instances=1)
        yield made
    finally:
        made.close()


def transaction(user_id: str, amount: float, *, merchant_id: str = "m-test") -> Record:
    """One valid purchase of a user with no history, at ``merchant_id``, now."""
    tx = Transaction.model_validate(
        {
            "transaction_id": f"tx-{uuid.uuid4().hex[:16]}",
            "event_time": events.now_utc(),
            "user_id": user_id,
            "merchant_id": merchant_id,
            "amount": amount,
            "currency": "USD",
            "items": [
                {"product_id": "p-test", "category": "books", "quantity": 1, "unit_price": amount}
            ],
            "payment_method": "credit_card",
            "payment_instrument_id": f"pi-{user_id}",
            "device_id": f"d-{user_id}",
            "ip_address": "10.1.2.3",
            "channel": "web",
            "location": {
                "city": "Berlin",
                "country": "DE",
                "region": "EMEA",
                "lat": 52.52,
                "lon": 13.405,
            },
        }
    )
    return Record(TRANSACTIONS, user_id.encode(), events.encode(tx), int(time.time() * 1000))
