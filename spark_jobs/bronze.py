"""The bronze tables: which topic feeds each, its columns, and how an event becomes a row.

Every record is validated against its contract in ``ecap.events`` (the only definition of
an event); nothing here re-states a rule. Its event time is checked against its Kafka
record timestamp with the stream workers' bounds (``ecap.event_time``: a year-2999 or a
1970 event fails), except on ``fraud-alerts``, whose event time is the scored
transaction's. A record that fails keeps its bytes in the ``_rejected`` table with the
error and the stage (``validate`` for an event time), so nothing read from Kafka is lost.

Rows are flat where analysts filter or group (the location's city, country and region,
the enums as strings), with ``event_date``, the UTC day of ``event_time``, as the partition
column. Every row carries where it came from: ``_kafka_partition``, ``_kafka_offset``,
``_kafka_timestamp`` and ``_ingested_at``.

This module is pure: :func:`decode_batch` turns an Arrow batch of Kafka records into an
Arrow batch of rows and is tested without Spark or Kafka.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ecap import topics
from ecap.event_time import Bounds, to_ms
from ecap.events import (
    Customer,
    Event,
    EventError,
    FailureStage,
    FraudAlert,
    ProductUpdate,
    Transaction,
    UserEvent,
    decode,
    optional_fields,
)
from ecap.settings import get_settings
from spark_jobs import lake

_TS = pa.timestamp("us", tz="UTC")

META_FIELDS = [
    pa.field("_kafka_partition", pa.int32()),
    pa.field("_kafka_offset", pa.int64()),
    pa.field("_kafka_timestamp", _TS),
]
"""Where each row came from; ``_ingested_at`` is added by the ingest run."""

DECODE_FIELDS = [
    pa.field("_key", pa.binary()),
    pa.field("_value", pa.binary()),
    pa.field("_error", pa.string()),
    pa.field("_stage", pa.string()),
]
"""Set only for a record that failed: its bytes, the contract's error and the stage."""

_LOCATION_FIELDS = [
    pa.field("city", pa.string()),
    pa.field("country", pa.string()),
    pa.field("region", pa.string()),
    pa.field("lat", pa.float64()),
    pa.field("lon", pa.float64()),
]

LINE_ITEM = pa.struct(
    [
        pa.field("product_id", pa.string()),
        pa.field("category", pa.string()),
        pa.field("quantity", pa.int32()),
        pa.field("unit_price", pa.float64()),
    ]
)
ALERT_REASON = pa.struct(
    [
        pa.field("code", pa.string()),
        pa.field("description", pa.string()),
        pa.field("contribution", pa.float64()),
    ]
)


def _location(location: Any) -> dict[str, Any]:
    return {
        "city": location.city,
        "country": location.country,
        "region": location.region,
        "lat": location.lat,
        "lon": location.lon,
    }


def _aware(moment: datetime) -> datetime:
    """A Kafka timestamp as Arrow hands it: UTC, with or without its zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _when(event_time: datetime) -> dict[str, Any]:
    return {"event_time": event_time, "event_date": event_time.date()}


# --- one row per event ---------------------------------------------------------------------


def _transaction_row(event: Event) -> dict[str, Any]:
    assert isinstance(event, Transaction)
    items = [
        {
            "product_id": item.product_id,
            "category": item.category,
            "quantity": item.quantity,
            "unit_price": item.unit_price,
        }
        for item in event.items
    ]
    main = max(event.items, key=lambda item: item.quantity * item.unit_price)
    return {
        "transaction_id": event.transaction_id,
        **_when(event.event_time),
        "user_id": event.user_id,
        "session_id": event.session_id,
        "merchant_id": event.merchant_id,
        "type": event.type.value,
        "original_transaction_id": event.original_transaction_id,
        "amount": event.amount,
        "currency": event.currency,
        "category": main.category,
        "item_count": len(items),
        "items": items,
        "payment_method": event.payment_method.value,
        "payment_instrument_id": event.payment_instrument_id,
        "device_id": event.device_id,
        "ip_address": event.ip_address,
        "channel": event.channel.value,
        **_location(event.location),
        "schema_version": event.schema_version,
    }


_TRANSACTION_FIELDS = [
    pa.field("transaction_id", pa.string()),
    pa.field("event_time", _TS),
    pa.field("event_date", pa.date32()),
    pa.field("user_id", pa.string()),
    pa.field("session_id", pa.string()),
    pa.field("merchant_id", pa.string()),
    pa.field("type", pa.string()),
    pa.field("original_transaction_id", pa.string()),
    pa.field("amount", pa.float64()),
    pa.field("currency", pa.string()),
    pa.field("category", pa.string()),
    pa.field("item_count", pa.int32()),
    pa.field("items", pa.list_(LINE_ITEM)),
    pa.field("payment_method", pa.string()),
    pa.field("payment_instrument_id", pa.string()),
    pa.field("device_id", pa.string()),
    pa.field("ip_address", pa.string()),
    pa.field("channel", pa.string()),
    *_LOCATION_FIELDS,
    pa.field("schema_version", pa.int32()),
]

_USER_EVENT_OPTIONAL = optional_fields(UserEvent)


def _user_event_row(event: Event) -> dict[str, Any]:
    assert isinstance(event, UserEvent)
    return {
        "event_id": event.event_id,
        "event_type": event.event_type.value,
        **_when(event.event_time),
        "session_id": event.session_id,
        "device_id": event.device_id,
        "channel": event.channel.value,
        "page": event.page,
        **{name: getattr(event, name) for name in _USER_EVENT_OPTIONAL},
        **_location(event.location),
        "schema_version": event.schema_version,
    }


_USER_EVENT_FIELDS = [
    pa.field("event_id", pa.string()),
    pa.field("event_type", pa.string()),
    pa.field("event_time", _TS),
    pa.field("event_date", pa.date32()),
    pa.field("session_id", pa.string()),
    pa.field("device_id", pa.string()),
    pa.field("channel", pa.string()),
    pa.field("page", pa.string()),
    pa.field("user_id", pa.string()),
    pa.field("referrer", pa.string()),
    pa.field("product_id", pa.string()),
    pa.field("category", pa.string()),
    pa.field("price", pa.float64()),
    pa.field("quantity", pa.int32()),
    pa.field("search_query", pa.string()),
    pa.field("rating", pa.int32()),
    pa.field("cart_value", pa.float64()),
    pa.field("transaction_id", pa.string()),
    *_LOCATION_FIELDS,
    pa.field("schema_version", pa.int32()),
]


def _product_row(event: Event) -> dict[str, Any]:
    assert isinstance(event, ProductUpdate)
    return {
        "product_id": event.product_id,
        **_when(event.event_time),
        "change": event.change.value,
        "name": event.name,
        "category": event.category,
        "price": event.price,
        "cost": event.cost,
        "currency": event.currency,
        "stock": event.stock,
        "active": event.active,
        "schema_version": event.schema_version,
    }


_PRODUCT_FIELDS = [
    pa.field("product_id", pa.string()),
    pa.field("event_time", _TS),
    pa.field("event_date", pa.date32()),
    pa.field("change", pa.string()),
    pa.field("name", pa.string()),
    pa.field("category", pa.string()),
    pa.field("price", pa.float64()),
    pa.field("cost", pa.float64()),
    pa.field("currency", pa.string()),
    pa.field("stock", pa.int64()),
    pa.field("active", pa.bool_()),
    pa.field("schema_version", pa.int32()),
]


def _customer_row(event: Event) -> dict[str, Any]:
    assert isinstance(event, Customer)
    return {
        "customer_id": event.customer_id,
        **_when(event.event_time),
        "signup_time": event.signup_time,
        "segment": event.segment.value,
        **_location(event.home),
        "currency": event.currency,
        "email_domain": event.email_domain,
        "marketing_opt_in": event.marketing_opt_in,
        "schema_version": event.schema_version,
    }


_CUSTOMER_FIELDS = [
    pa.field("customer_id", pa.string()),
    pa.field("event_time", _TS),
    pa.field("event_date", pa.date32()),
    pa.field("signup_time", _TS),
    pa.field("segment", pa.string()),
    *_LOCATION_FIELDS,
    pa.field("currency", pa.string()),
    pa.field("email_domain", pa.string()),
    pa.field("marketing_opt_in", pa.bool_()),
    pa.field("schema_version", pa.int32()),
]


def _alert_row(event: Event) -> dict[str, Any]:
    assert isinstance(event, FraudAlert)
    reasons = [
        {"code": r.code, "description": r.description, "contribution": r.contribution}
        for r in event.reasons
    ]
    return {
        "alert_id": event.alert_id,
        "transaction_id": event.transaction_id,
        "user_id": event.user_id,
        "merchant_id": event.merchant_id,
        "amount": event.amount,
        "currency": event.currency,
        "score": event.score,
        "priority": event.priority.value,
        "reason_codes": [r.code for r in event.reasons],
        "reasons": reasons,
        "ruleset_version": event.ruleset_version,
        "model_version": event.model_version,
        **_when(event.event_time),
        "detection_time": event.detection_time,
        "schema_version": event.schema_version,
    }


_ALERT_FIELDS = [
    pa.field("alert_id", pa.string()),
    pa.field("transaction_id", pa.string()),
    pa.field("user_id", pa.string()),
    pa.field("merchant_id", pa.string()),
    pa.field("amount", pa.float64()),
    pa.field("currency", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("priority", pa.string()),
    pa.field("reason_codes", pa.list_(pa.string())),
    pa.field("reasons", pa.list_(ALERT_REASON)),
    pa.field("ruleset_version", pa.int64()),
    pa.field("model_version", pa.string()),
    pa.field("event_time", _TS),
    pa.field("event_date", pa.date32()),
    pa.field("detection_time", _TS),
    pa.field("schema_version", pa.int32()),
]


# --- the tables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BronzeTable:
    """One source topic and the bronze table it lands in.

    ``key`` names the column a compacted topic is keyed by: its table keeps only the latest
    row per key (the embedded broker does not compact, so the reader must). Keyed tables
    are small state tables and are not partitioned; event tables are partitioned by
    ``event_date``. ``bounded``: the event time is checked against the record timestamp.
    """

    name: str
    topic: str
    contract: type[Event]
    fields: tuple[pa.Field, ...]
    to_row: Callable[[Event], dict[str, Any]]
    key: str | None = None
    bounded: bool = True

    @property
    def partition_by(self) -> tuple[str, ...]:
        return () if self.key else ("event_date",)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def decoded_schema(self) -> pa.Schema:
        """What :func:`decode_batch` yields: the table's columns, where each came from, and
        the failure columns."""
        return pa.schema([*META_FIELDS, *DECODE_FIELDS, *self.fields])


TABLES: dict[str, BronzeTable] = {
    t.name: t
    for t in (
        BronzeTable(
            lake.TRANSACTIONS,
            topics.TRANSACTIONS,
            Transaction,
            tuple(_TRANSACTION_FIELDS),
            _transaction_row,
        ),
        BronzeTable(
            lake.USER_EVENTS,
            topics.USER_EVENTS,
            UserEvent,
            tuple(_USER_EVENT_FIELDS),
            _user_event_row,
        ),
        BronzeTable(
            lake.PRODUCT_UPDATES,
            topics.PRODUCT_UPDATES,
            ProductUpdate,
            tuple(_PRODUCT_FIELDS),
            _product_row,
            key="product_id",
        ),
        BronzeTable(
            lake.CUSTOMERS,
            topics.CUSTOMERS,
            Customer,
            tuple(_CUSTOMER_FIELDS),
            _customer_row,
            key="customer_id",
        ),
        BronzeTable(
            lake.FRAUD_ALERTS,
            topics.FRAUD_ALERTS,
            FraudAlert,
            tuple(_ALERT_FIELDS),
            _alert_row,
            bounded=False,
        ),
    )
}
"""Every bronze table fed by a topic, by table name, in ingest order."""

REJECTED_FIELDS = [
    pa.field("topic", pa.string()),
    pa.field("partition", pa.int32()),
    pa.field("offset", pa.int64()),
    pa.field("kafka_timestamp", _TS),
    pa.field("key", pa.binary()),
    pa.field("value", pa.binary()),
    pa.field("error", pa.string()),
    pa.field("stage", pa.string()),
]
"""The ``_rejected`` table (plus ``_ingested_at``), partitioned by ``topic``."""


def decode_batch(
    table: BronzeTable,
    records: pa.RecordBatch,
    *,
    bounds: Bounds | None = None,
    now: datetime | None = None,
) -> pa.RecordBatch:
    """Validate each Kafka record (``partition, offset, timestamp, key, value``) against the
    table's contract and its event time against its timestamp (``bounds``, read at ``now``;
    default: the settings' and the wall clock): a row of the table, or a failure with the
    record's bytes and error."""
    if table.bounded and bounds is None:
        bounds = Bounds.from_settings(get_settings())
    now_ms = to_ms(now or datetime.now(UTC))
    columns = records.to_pydict()
    rows = []
    for partition, offset, timestamp, key, value in zip(
        columns["partition"],
        columns["offset"],
        columns["timestamp"],
        columns["key"],
        columns["value"],
        strict=True,
    ):
        meta = {
            "_kafka_partition": partition,
            "_kafka_offset": offset,
            "_kafka_timestamp": timestamp,
        }
        try:
            if value is None:
                raise EventError("the record has no value (a tombstone)", FailureStage.DECODE)
            row = table.to_row(decode(table.contract, value))
            if table.bounded and bounds is not None:
                stamped = None if timestamp is None else to_ms(_aware(timestamp))
                bounds.check_time(row["event_time"], stamped, now_ms)
        except EventError as exc:
            rows.append(
                {
                    **meta,
                    "_key": key,
                    "_value": value,
                    "_error": str(exc),
                    "_stage": exc.stage.value,
                }
            )
            continue
        rows.append({**meta, **row})
    return pa.RecordBatch.from_pylist(rows, schema=table.decoded_schema())
