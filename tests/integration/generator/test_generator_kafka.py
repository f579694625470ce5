"""The generator against a real broker: reproducible payloads that match the JSON Schema."""

from __future__ import annotations

from datetime import datetime

import orjson
import pandas as pd
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from typer.testing import CliRunner

from ecap import topics
from ecap.events import json_schemas
from ecap.generator.cli import app

pytestmark = pytest.mark.integration

runner = CliRunner()
STREAM_TOPICS = [
    topics.TRANSACTIONS,
    topics.USER_EVENTS,
    topics.PRODUCT_UPDATES,
    topics.CUSTOMERS,
    topics.FRAUD_LABELS,
]
CONTRACT_OF_TOPIC = {
    topics.TRANSACTIONS: "transaction",
    topics.USER_EVENTS: "user_event",
    topics.PRODUCT_UPDATES: "product_update",
    topics.CUSTOMERS: "customer",
    topics.FRAUD_LABELS: "fraud_label",
}


def _format_checker() -> FormatChecker:
    """Draft 2020-12 formats, with date-time checked here (jsonschema needs an optional
    package for it, which the project does not install)."""
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def is_datetime(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parsed = datetime.fromisoformat(value)
        return "T" in value and parsed.tzinfo is not None

    return checker


def _stream_into(address: str, use_broker, read_back, tmp_path) -> dict:
    use_broker(address)
    result = runner.invoke(
        app,
        [
            "stream",
            "--rate",
            "500",
            "--duration",
            "4",
            "--seed",
            "1",
            "--fraud-rate",
            "0.05",
            "--labels-file",
            str(tmp_path / f"labels-{address.rsplit(':', 1)[1]}.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    return read_back(address, STREAM_TOPICS)


@pytest.fixture(scope="module")
def two_runs(start_broker, use_broker, read_back, tmp_path_factory) -> tuple[dict, dict]:
    """`stream --rate 500 --duration 4 --seed 1` into two fresh brokers, read back."""
    folder = tmp_path_factory.mktemp("labels")
    first = _stream_into(start_broker(), use_broker, read_back, folder)
    second = _stream_into(start_broker(), use_broker, read_back, folder)
    return first, second


def test_the_same_seed_twice_gives_identical_partitions(two_runs) -> None:
    first, second = two_runs
    total = sum(len(records) for records in first.values())
    assert total == pytest.approx(2000, rel=0.1)
    assert first == second


def test_every_record_read_back_validates_against_the_exported_json_schema(two_runs) -> None:
    schemas = json_schemas()
    checker = _format_checker()
    validators = {
        topic: Draft202012Validator(schemas[name], format_checker=checker)
        for topic, name in CONTRACT_OF_TOPIC.items()
    }
    counted = 0
    for (topic, _), records in two_runs[0].items():
        for _key, value, _timestamp in records:
            payload = orjson.loads(value)
            validators[topic].validate(payload)
            counted += 1
    assert counted > 1800


def test_records_are_keyed_as_the_topic_catalog_says(two_runs) -> None:
    key_field = {
        topics.TRANSACTIONS: "user_id",
        topics.USER_EVENTS: "session_id",
        topics.PRODUCT_UPDATES: "product_id",
        topics.CUSTOMERS: "customer_id",
        topics.FRAUD_LABELS: "transaction_id",
    }
    for (topic, _), records in two_runs[0].items():
        for key, value, _timestamp in records:
            assert key == orjson.loads(value)[key_field[topic]].encode()


def test_the_labels_file_holds_what_the_labels_topic_holds(
    start_broker, use_broker, read_back, tmp_path
) -> None:
    address = start_broker()
    use_broker(address)
    labels_file = tmp_path / "labels.jsonl"
    result = runner.invoke(
        app,
        [
            "stream",
            "--rate",
            "2000",
            "--duration",
            "3",
            "--time-scale",
            "600",
            "--seed",
            "3",
            "--fraud-rate",
            "0.1",
            "--labels-file",
            str(labels_file),
        ],
    )
    assert result.exit_code == 0, result.output
    on_topic = read_back(address, [topics.FRAUD_LABELS])
    from_topic = sorted(value for records in on_topic.values() for _, value, _ in records)
    assert from_topic
    assert sorted(labels_file.read_bytes().splitlines()) == from_topic


def test_history_to_kafka_matches_the_file(start_broker, use_broker, read_back, tmp_path) -> None:
    address = start_broker()
    use_broker(address)
    out = tmp_path / "orders.parquet"
    result = runner.invoke(
        app,
        [
            "history",
            "--customers",
            "200",
            "--days",
            "60",
            "--seed",
            "2",
            "--out",
            str(out),
            "--to-kafka",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    sent = read_back(address, [topics.TRANSACTIONS, topics.CUSTOMERS])
    transactions = [
        orjson.loads(value)
        for (topic, _), records in sent.items()
        if topic == topics.TRANSACTIONS
        for _, value, _ in records
    ]
    assert sorted(tx["transaction_id"] for tx in transactions) == sorted(frame["order_id"])
    customers = sum(len(r) for (topic, _), r in sent.items() if topic == topics.CUSTOMERS)
    assert customers == 200


def test_a_missing_topic_is_reported_with_the_command_that_creates_it(
    start_broker, use_broker
) -> None:
    use_broker(start_broker(topics=False))
    result = runner.invoke(app, ["stream", "--rate", "500", "--duration", "4", "--seed", "1"])
    assert result.exit_code == 1
    assert "ecap topics create" in " ".join(result.output.split())
