"""One verdict on ``fraud-feedback`` whose features break the model's maths (-1e308 or
infinity: valid JSON, valid contract) used to raise in every partition's next batch: the
fraud agent crashed on each batch and scored nothing more. Now the verdict is learned
without its features and the batch is scored."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from agents.transactions import TransactionsWorker
from ecap.events import FraudFeedback, Verdict, encode
from ecap.fraud.features import Features
from ecap.topics import FRAUD_FEEDBACK, TRANSACTIONS
from tables import user_state as tables
from tests.unit.regressions.event_time_year_2999.conftest import T0, event
from tests.unit.regressions.event_time_year_2999.test_agents_refuse_poisoned_times import TX


def _poisoned_verdict() -> ConsumerRecord[bytes, bytes]:
    feedback = FraudFeedback(
        case_id=1,
        alert_id="al-1",
        transaction_id="tx-v-1",
        user_id="alice",
        merchant_id="m-1",
        verdict=Verdict.CONFIRMED,
        reasons=["impossible_travel"],
        features={f.name: -1e308 for f in dataclasses.fields(Features)},
        decided_by="tester",
        decided_at=datetime(2026, 11, 27, tzinfo=UTC),
    )
    value = encode(feedback)
    return ConsumerRecord(FRAUD_FEEDBACK, 0, 0, 0, 0, b"tx", value, None, 2, len(value), ())


def test_a_verdict_with_unusable_features_does_not_stop_the_scoring(
    fraud: TransactionsWorker,
) -> None:
    fraud.on_control(_poisoned_verdict(), True)
    partition = tables.partition_for("alice")
    asyncio.run(fraud.process([event(TRANSACTIONS, TX, offset=0, stamp=T0, partition=partition)]))

    assert fraud.partitions[partition].users[tables.user_key("alice")].count == 1
    assert fraud.partitions[partition].feedback_applied == {0: 0}
