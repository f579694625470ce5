"""Kafka records to bronze rows: validated against the contracts, failures kept whole."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pyarrow as pa

from ecap.events import UserEvent, optional_fields
from spark_jobs import bronze
from spark_jobs import lake as tables

TRANSACTION = {
    "schema_version": 1,
    "transaction_id": "t1",
    "event_time": "2024-03-01T23:30:00Z",
    "user_id": "u1",
    "merchant_id": "m1",
    "type": "purchase",
    "amount": 45.0,
    "currency": "EUR",
    "items": [
        {"product_id": "p1", "category": "books", "quantity": 2, "unit_price": 7.5},
        {"product_id": "p2", "category": "toys", "quantity": 1, "unit_price": 30.0},
    ],
    "payment_method": "paypal",
    "payment_instrument_id": "pi-1",
    "device_id": "d-1",
    "ip_address": "10.0.0.1",
    "channel": "app",
    "location": {"city": "Lyon", "country": "FR", "region": "EMEA", "lat": 45.76, "lon": 4.84},
}


def _records(*values: bytes | None) -> pa.RecordBatch:
    n = len(values)
    return pa.RecordBatch.from_pydict(
        {
            "partition": [0] * n,
            "offset": list(range(n)),
            "timestamp": [datetime(2024, 3, 2, tzinfo=UTC)] * n,
            "key": [b"u1"] * n,
            "value": list(values),
        }
    )


def test_a_valid_transaction_becomes_one_flat_row() -> None:
    table = bronze.TABLES[tables.TRANSACTIONS]
    (row,) = bronze.decode_batch(table, _records(orjson.dumps(TRANSACTION))).to_pylist()
    assert row["_error"] is None
    assert (row["transaction_id"], row["event_date"], row["city"], row["region"]) == (
        "t1",
        date(2024, 3, 1),
        "Lyon",
        "EMEA",
    )
    assert (row["payment_method"], row["category"], row["item_count"]) == ("paypal", "toys", 2)
    assert row["items"][0] == {
        "product_id": "p1",
        "category": "books",
        "quantity": 2,
        "unit_price": 7.5,
    }


def test_a_record_breaking_the_contract_keeps_its_bytes_and_the_contracts_error() -> None:
    table = bronze.TABLES[tables.TRANSACTIONS]
    refund_without_purchase = orjson.dumps({**TRANSACTION, "type": "refund"})
    (row,) = bronze.decode_batch(table, _records(refund_without_purchase)).to_pylist()
    assert (row["_value"], row["_key"], row["_stage"]) == (
        refund_without_purchase,
        b"u1",
        "validate",
    )
    assert "original_transaction_id is required" in row["_error"]
    assert row["transaction_id"] is None


def test_a_tombstone_is_a_failure_not_a_crash() -> None:
    table = bronze.TABLES[tables.CUSTOMERS]
    (row,) = bronze.decode_batch(table, _records(None)).to_pylist()
    assert (row["_stage"], row["_error"]) == ("decode", "the record has no value (a tombstone)")


def test_rows_keep_where_they_came_from() -> None:
    table = bronze.TABLES[tables.TRANSACTIONS]
    rows = bronze.decode_batch(table, _records(b"{", orjson.dumps(TRANSACTION))).to_pylist()
    assert [(r["_kafka_partition"], r["_kafka_offset"]) for r in rows] == [(0, 0), (0, 1)]


def test_keyed_tables_are_not_partitioned_and_event_tables_are_by_event_date() -> None:
    partitioning = {name: t.partition_by for name, t in bronze.TABLES.items()}
    assert partitioning == {
        tables.TRANSACTIONS: ("event_date",),
        tables.USER_EVENTS: ("event_date",),
        tables.PRODUCT_UPDATES: (),
        tables.CUSTOMERS: (),
        tables.FRAUD_ALERTS: ("event_date",),
    }


def test_every_optional_user_event_field_has_a_bronze_column() -> None:
    columns = bronze.TABLES[tables.USER_EVENTS].columns
    assert [name for name in optional_fields(UserEvent) if name not in columns] == []
