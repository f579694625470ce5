"""The transactions agent's batch step and control-topic handling, without Kafka.

The worker is built on a Faust app that is never started; its tables are dictionaries
that record which partition each write went to, and its output topics record what was
sent. Everything else (decode, detector, state bytes) is the real code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import orjson
import pytest
from aiokafka import ConsumerRecord
from faust.events import Event
from faust.streams import current_event
from faust.types.tuples import Message

from agents.transactions import TransactionsWorker
from ecap.events import (
    FailureStage,
    FraudAlert,
    FraudFeedback,
    Transaction,
    Verdict,
    decode,
    encode,
)
from ecap.fraud import rule_records
from ecap.fraud.detector import RulePrecision
from ecap.fraud.model import AnomalyModel
from ecap.fraud.state import UserState
from ecap.topics import FRAUD_FEEDBACK, FRAUD_RULES, TRANSACTIONS
from tables import user_state as tables
from tables.user_state import DetectorRecord, partition_for
from tests.unit.doubles import FakeTopic

EVENTS_APP = faust.App("unit-events", broker="memory://")
SIGNING_KEY = rule_records.SigningKey(b"k" * 32)


class FakeTable(dict[bytes, bytes]):
    """A table's mapping and store in one; remembers the partition of every write."""

    def __init__(self) -> None:
        super().__init__()
        self.data = self
        self.writes: list[tuple[int, bytes]] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        event = current_event()
        assert event is not None, "table written outside a partition context"
        self.writes.append((event.message.partition, key))
        super().__setitem__(key, value)


@pytest.fixture
def worker() -> TransactionsWorker:
    app = faust.App("unit-transactions", broker="memory://", store="memory://")
    fraud_tables = tables.FraudTables(FakeTable(), FakeTable(), FakeTable())  # type: ignore[arg-type]
    made = TransactionsWorker(app, fraud_tables, "transactions-0@test", "127.0.0.1:1", SIGNING_KEY)
    made.alerts_topic = FakeTopic()  # type: ignore[assignment]
    made.dead_topic = FakeTopic()  # type: ignore[assignment]
    return made


def _tx(user: str, n: int, *, amount: float = 40.0, city: str = "Berlin") -> bytes:
    lat, lon = (52.52, 13.405) if city == "Berlin" else (-33.87, 151.21)
    when = datetime(2026, 11, 27, 12, tzinfo=UTC) + timedelta(minutes=n)
    tx = Transaction.model_validate(
        {
            "transaction_id": f"tx-{user}-{n}",
            "event_time": when,
            "user_id": user,
            "merchant_id": "m-1",
            "amount": amount,
            "currency": "EUR",
            "items": [
                {"product_id": "p-1", "category": "books", "quantity": 1, "unit_price": amount}
            ],
            "payment_method": "credit_card",
            "payment_instrument_id": f"pi-{user}",
            "device_id": f"d-{user}" if city == "Berlin" else "d-stranger",
            "ip_address": "10.0.0.1",
            "channel": "web",
            "location": {"city": city, "country": "DE", "region": "EMEA", "lat": lat, "lon": lon},
        }
    )
    return encode(tx)


def _event(app: faust.App, value: bytes, *, partition: int, offset: int) -> Event:
    """A record as the broker hands it: stamped with its event time (a replay's stamp)."""
    try:
        stamp = datetime.fromisoformat(orjson.loads(value)["event_time"]).timestamp()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        stamp = time.time()
    message = Message(TRANSACTIONS, partition, offset, stamp, 0, None, b"k", value, None)
    return Event(app, b"k", value, None, message)


def _events(worker: TransactionsWorker, values: list[bytes]) -> list[Event]:
    """Records as the agent gets them: each in its user's partition (junk in partition 0)."""
    events = []
    for offset, value in enumerate(values):
        try:
            partition = partition_for(orjson.loads(value)["user_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            partition = 0
        events.append(_event(EVENTS_APP, value, partition=partition, offset=offset))
    return events


def test_a_batch_writes_each_changed_user_once_into_its_own_partition(
    worker: TransactionsWorker,
) -> None:
    values = [_tx("alice", n) for n in range(5)] + [_tx("bob", n) for n in range(3)]
    asyncio.run(worker.process(_events(worker, values)))

    user_table: FakeTable = worker.tables.user_state  # type: ignore[assignment]
    assert sorted(user_table.writes) == sorted(
        [(partition_for("alice"), b"alice"), (partition_for("bob"), b"bob")]
    )
    assert UserState.from_bytes(user_table[b"alice"]).count == 5


def test_bad_records_are_dead_lettered_with_their_bytes_and_the_rest_is_scored(
    worker: TransactionsWorker,
) -> None:
    values = [b"\xff not json", b'{"transaction_id": 1}', _tx("carol", 0)]
    asyncio.run(worker.process(_events(worker, values)))

    letters = [orjson.loads(sent["value"]) for sent in worker.dead_topic.sent]  # type: ignore[attr-defined]
    assert [letter["stage"] for letter in letters] == [
        FailureStage.DECODE.value,
        FailureStage.VALIDATE.value,
    ]
    assert UserState.from_bytes(worker.tables.user_state[b"carol"]).count == 1


def test_a_redelivered_batch_changes_nothing_and_raises_no_second_alert(
    worker: TransactionsWorker,
) -> None:
    history = [_tx("dave", n, amount=30.0) for n in range(6)]
    attack = [_tx("dave", 6, amount=900.0, city="Sydney")]
    asyncio.run(worker.process(_events(worker, history + attack)))
    alerts = [decode(FraudAlert, sent["value"]) for sent in worker.alerts_topic.sent]  # type: ignore[attr-defined]
    assert [alert.transaction_id for alert in alerts] == ["tx-dave-6"]
    state_before = worker.tables.user_state[b"dave"]

    asyncio.run(worker.process(_events(worker, history + attack)))

    assert len(worker.alerts_topic.sent) == 1  # type: ignore[attr-defined]
    assert worker.tables.user_state[b"dave"] == state_before


def _record(
    topic: str, offset: int, value: bytes, key: bytes, headers: tuple[tuple[str, bytes], ...] = ()
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value), headers)


def _signed(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    assert SIGNING_KEY.secret is not None
    header = (rule_records.SIGNATURE_HEADER, rule_records.sign(SIGNING_KEY.secret, value))
    return _record(FRAUD_RULES, offset, value, rule_records.RULES_KEY, (header,))


def test_a_valid_rule_set_replaces_the_running_one(worker: TransactionsWorker) -> None:
    newer = worker.ruleset.model_copy(update={"version": worker.ruleset.version + 1})
    worker.on_control(_signed(0, newer.to_json()), True)
    assert worker.ruleset.version == newer.version


def test_an_invalid_rule_set_is_logged_and_the_running_one_stays(
    worker: TransactionsWorker, caplog: pytest.LogCaptureFixture
) -> None:
    running = worker.ruleset.version
    with caplog.at_level(logging.ERROR):
        worker.on_control(_signed(7, b'{"version": 5}'), True)
    assert worker.ruleset.version == running
    assert "fraud-rules[0]@7: rejected rule set (invalid): invalid rule set: rules: Field " in (
        caplog.text
    )


def test_without_a_signing_key_the_worker_says_so_and_keeps_the_shipped_rules(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = faust.App("unit-no-key", broker="memory://", store="memory://")
    fraud_tables = tables.FraudTables(FakeTable(), FakeTable(), FakeTable())  # type: ignore[arg-type]
    no_key = rule_records.SigningKey(None, "the key file is empty")
    with caplog.at_level(logging.ERROR):
        made = TransactionsWorker(app, fraud_tables, "transactions-0@test", "127.0.0.1:1", no_key)
        shipped = made.ruleset.version
        newer = made.ruleset.model_copy(update={"version": shipped + 1})
        made.on_control(_signed(0, newer.to_json()), True)
    assert made.ruleset.version == shipped
    assert made.control.rejected == {rule_records.Reason.NO_KEY: 1}
    assert "no usable rule-signing key: the key file is empty" in caplog.text


def _verdict(offset: int, user: str, *, fraud: bool) -> ConsumerRecord[bytes, bytes]:
    feedback = FraudFeedback(
        case_id=offset + 1,
        alert_id=f"al-{offset}",
        transaction_id=f"tx-v-{offset}",
        user_id=user,
        merchant_id="m-1",
        verdict=Verdict.CONFIRMED if fraud else Verdict.FALSE_POSITIVE,
        reasons=["impossible_travel"],
        decided_by="tester",
        decided_at=datetime(2026, 11, 27, tzinfo=UTC),
    )
    return _record(FRAUD_FEEDBACK, offset, encode(feedback), b"tx")


def test_verdicts_are_learned_once_and_count_for_the_merchant_of_the_users_partition(
    worker: TransactionsWorker,
) -> None:
    worker.on_control(_verdict(0, "erin", fraud=True), True)
    worker.on_control(_verdict(1, "frank", fraud=False), True)
    erin = partition_for("erin")
    batch = [_tx("erin", 0)]
    asyncio.run(worker.process(_events(worker, batch)))
    asyncio.run(worker.process(_events(worker, [_tx("erin", 1)])))

    precision = worker.partitions[erin].detector.rule_precision
    assert precision.counts["impossible_travel"] == [1, 1]
    merchant = worker.tables.merchant_stats[tables.merchant_key(erin, "m-1")]
    assert orjson.loads(merchant)[5] == 1  # confirmed fraud: erin's verdict only
    record = DetectorRecord.from_bytes(worker.tables.detector_state[tables.detector_key(erin)])
    assert record.feedback_applied == {0: 1}


def test_a_detector_record_round_trips() -> None:
    precision = RulePrecision()
    precision.record(["amount_spike"], True)
    record = DetectorRecord(AnomalyModel(), precision, {0: 12, 1: 3})
    again = DetectorRecord.from_bytes(record.to_bytes())
    assert again.precision.counts == {"amount_spike": [0, 1]}
    assert again.feedback_applied == {0: 12, 1: 3}
    assert again.model.version == record.model.version


class RefusingTopic(FakeTopic):
    """A topic whose broker refuses the first ``refusals`` sends (their futures fail)."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def send(self, **kwargs: Any) -> asyncio.Future[None]:
        self.sent.append(kwargs)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.refusals:
            self.refusals -= 1
            future.set_exception(ConnectionError("broker went away"))
        else:
            future.set_result(None)
        return future


def test_an_alert_the_broker_refuses_is_sent_again_before_the_state_is_written(
    worker: TransactionsWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agents.transactions.RESEND_FIRST_S", 0.0)
    worker.alerts_topic = RefusingTopic(refusals=2)  # type: ignore[assignment]
    history = [_tx("gina", n, amount=30.0) for n in range(6)]
    attack = [_tx("gina", 6, amount=900.0, city="Sydney")]
    asyncio.run(worker.process(_events(worker, history + attack)))
    sent = [decode(FraudAlert, s["value"]).transaction_id for s in worker.alerts_topic.sent]  # type: ignore[attr-defined]
    assert sent == ["tx-gina-6"] * 3
    assert UserState.from_bytes(worker.tables.user_state[b"gina"]).count == 7


def test_a_batch_writes_the_state_it_left_not_what_the_next_batch_scored_meanwhile(
    worker: TransactionsWorker,
) -> None:
    async def two_batches() -> bytes:
        first = await worker.score(_events(worker, [_tx("hugo", n) for n in range(2)]))
        await worker.score(_events(worker, [_tx("hugo", n) for n in range(2, 5)]))
        await worker._complete(first)
        return worker.tables.user_state[b"hugo"]

    written = asyncio.run(two_batches())
    assert UserState.from_bytes(written).count == 2


def test_a_user_with_a_change_not_yet_written_stays_in_memory(
    worker: TransactionsWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tables.fraud_partition.USERS_CACHED_PER_PARTITION", 0)
    ivan = partition_for("ivan")

    async def pipelined() -> None:
        first = await worker.score(_events(worker, [_tx("ivan", 0)]))
        second = await worker.score(_events(worker, [_tx("ivan", 1)]))
        await worker._complete(first)
        assert b"ivan" in worker.partitions[ivan].users  # the second batch's change is pending
        await worker._complete(second)

    asyncio.run(pipelined())
    assert b"ivan" not in worker.partitions[ivan].users
    assert UserState.from_bytes(worker.tables.user_state[b"ivan"]).count == 2
