"""The generator's fast serialisation is byte-identical to the contracts' own encode()."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter

from ecap import topics
from ecap.events import (
    Customer,
    Event,
    FraudLabel,
    LineItem,
    ProductUpdate,
    Transaction,
    UserEvent,
    decode,
    encode,
)
from ecap.generator import wire
from ecap.generator.history import kafka_records

MODEL_OF_TOPIC: dict[str, type[Event]] = {
    topics.TRANSACTIONS: Transaction,
    topics.USER_EVENTS: UserEvent,
    topics.PRODUCT_UPDATES: ProductUpdate,
    topics.CUSTOMERS: Customer,
    topics.FRAUD_LABELS: FraudLabel,
}
LOCATION = {"city": "Paris", "country": "FR", "region": "EMEA", "lat": 48.8566, "lon": 2.3522}


def test_transaction_builder_lists_every_field_in_contract_order() -> None:
    payload = wire.transaction(
        transaction_id="tx-1",
        event_time="2026-11-27T08:00:00Z",
        user_id="c-1",
        session_id="s-1",
        merchant_id="m-1",
        type="refund",
        original_transaction_id="tx-0",
        amount=1.0,
        currency="EUR",
        items=[wire.line_item("p-1", "books", 1, 1.0)],
        payment_method="paypal",
        payment_instrument_id="pi-1",
        device_id="d-1",
        ip_address="1.2.3.4",
        channel="web",
        location=LOCATION,
    )
    assert list(payload) == list(Transaction.model_fields)
    assert list(payload["items"][0]) == list(LineItem.model_fields)


def test_user_event_builder_lists_every_field_in_contract_order() -> None:
    extra = {name: "x" for name in wire.USER_EVENT_OPTIONAL}
    payload = wire.user_event(
        event_id="e",
        event_type="search",
        event_time="t",
        session_id="s",
        user_id="u",
        device_id="d",
        channel="web",
        location=LOCATION,
        page="/",
        extra=extra,
    )
    assert list(payload) == list(UserEvent.model_fields)


@pytest.mark.parametrize(
    ("builder", "model"),
    [
        (wire.product_update, ProductUpdate),
        (wire.customer, Customer),
        (wire.fraud_label, FraudLabel),
    ],
)
def test_other_builders_list_every_field_in_contract_order(builder, model) -> None:
    arguments = {name: None for name in model.model_fields if name != "schema_version"}
    assert list(builder(**arguments)) == list(model.model_fields)


@pytest.mark.parametrize("millis", [0, 7, 123, 999])
def test_clock_writes_times_as_pydantic_does(millis: int) -> None:
    moment = datetime(2026, 11, 27, 8, 30, 15, millis * 1000, tzinfo=UTC)
    ms = int(moment.timestamp()) * 1000 + millis
    assert wire.Clock().iso(ms) == TypeAdapter(datetime).dump_python(moment, mode="json")


def test_every_generated_record_is_a_valid_event_in_canonical_form(fraud_run) -> None:
    for record in fraud_run.records:
        model = MODEL_OF_TOPIC[record.topic]
        assert encode(decode(model, record.value)) == record.value


def test_history_events_are_valid_events_in_canonical_form(orders) -> None:
    for count, record in enumerate(kafka_records(orders)):
        if count > 20_000:
            break
        model = MODEL_OF_TOPIC[record.topic]
        assert encode(decode(model, record.value)) == record.value
