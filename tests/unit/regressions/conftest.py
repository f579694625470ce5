"""What more than one unit regression test builds: a fraud worker over tables and topics in
memory (the real batch step, detector and state bytes)."""

from __future__ import annotations

import pytest

from agents.transactions import TransactionsWorker
from ecap.fraud import rule_records
from tables import user_state as tables
from tests.unit.doubles import FakeTopic
from tests.unit.regressions.event_time_year_2999.conftest import APP


class FakeTable(dict[bytes, bytes]):
    @property
    def data(self) -> FakeTable:
        return self


@pytest.fixture
def fraud() -> TransactionsWorker:
    fraud_tables = tables.FraudTables(FakeTable(), FakeTable(), FakeTable())  # type: ignore[arg-type]
    worker = TransactionsWorker(
        APP, fraud_tables, "transactions-0@test", "127.0.0.1:1", rule_records.SigningKey(b"k" * 32)
    )
    worker.alerts_topic = FakeTopic()  # type: ignore[assignment]
    worker.dead_topic = FakeTopic()  # type: ignore[assignment]
    return worker
