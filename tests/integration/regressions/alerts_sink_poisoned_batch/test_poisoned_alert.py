"""One alert that reused an existing ``alert_id`` under a new ``transaction_id`` raised
``UniqueViolationError`` in the alerts sink: only ``ON CONFLICT (transaction_id)`` was
handled, so Faust restarted the agent, the valid alert after it never became a case, and
every restart replayed the batch and crashed again. Now the poisoned alert alone goes to
``fraud-alerts.dlq`` and the others become cases."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime

import asyncpg
from confluent_kafka import Producer

from ecap import workers_launcher
from ecap.events import DeadLetter, FailureStage, FraudAlert, decode, encode
from ecap.kafka import snapshot
from ecap.settings import Settings
from ecap.topics import FRAUD_ALERTS, dlq
from tests.integration.conftest import start_worker

CASES_TIMEOUT_S = 60.0


def _alert(alert_id: str, transaction_id: str) -> FraudAlert:
    now = datetime.now(UTC)
    return FraudAlert.model_validate(
        {
            "alert_id": alert_id,
            "transaction_id": transaction_id,
            "user_id": "u-poison",
            "merchant_id": "m-1",
            "amount": 120.0,
            "currency": "EUR",
            "score": 0.8,
            "priority": "HIGH",
            "reasons": [{"code": "amount_spike", "description": "big", "contribution": 1.0}],
            "ruleset_version": 1,
            "model_version": "test",
            "event_time": now,
            "detection_time": now,
        }
    )


async def _case_transactions(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT transaction_id FROM fraud_cases")
    finally:
        await conn.close()
    return {row["transaction_id"] for row in rows}


def test_a_poisoned_alert_is_dead_lettered_and_costs_only_itself(
    worker_home: Settings, kafka_bootstrap: str, database: str
) -> None:
    poisoned = _alert("al-1", "tx-2")
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 50})
    for alert in (_alert("al-1", "tx-1"), poisoned, _alert("al-3", "tx-3")):
        producer.produce(FRAUD_ALERTS, key=b"u-poison", value=encode(alert))
    assert producer.flush(30) == 0
    worker = start_worker(worker_home, "alerts")
    try:
        deadline = time.monotonic() + CASES_TIMEOUT_S
        while (cases := asyncio.run(_case_transactions(database))) != {"tx-1", "tx-3"}:
            log = worker.log.read_text(errors="replace")[-4000:]
            assert worker.running, log
            assert time.monotonic() < deadline, f"cases {sorted(cases)} after the batch:\n{log}"
            time.sleep(0.3)
        letters = [
            DeadLetter.model_validate_json(m.value() or b"")
            for m in snapshot.records(kafka_bootstrap, dlq(FRAUD_ALERTS))
        ]
        assert len(letters) == 1
        letter = letters[0]
        assert letter.stage is FailureStage.PROCESS
        assert "alert_id" in letter.error
        assert decode(FraudAlert, base64.b64decode(letter.payload_b64)) == poisoned
        assert worker.running
    finally:
        workers_launcher.stop(worker_home)
