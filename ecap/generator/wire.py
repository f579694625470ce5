"""Fast serialisation of generated events, byte-identical to ``ecap.events.encode``.

Building a pydantic model per event costs about 8 us, more than the rest of the generator
together, so records are built as plain dicts in the contract's field order (None left
out, as ``encode`` does) and dumped with orjson. Nothing here defines a contract: the
tests check that ``encode(decode(Model, payload)) == payload`` for every generated record
and that each builder lists exactly the model's fields, so a contract change that the
builders miss fails the suite instead of drifting silently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from ecap.events import SCHEMA_VERSION, UserEvent, optional_fields


class Record(NamedTuple):
    """One message for Kafka: topic, key bytes, value bytes and event time (epoch ms)."""

    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int


class Clock:
    """Formats epoch milliseconds as the ISO-8601 UTC strings pydantic writes."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, ms: int) -> str:
        second, millis = divmod(ms, 1000)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if millis:
            return f"{self._prefix}.{millis:03d}000Z"
        return self._prefix + "Z"


def dumps(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


def line_item(product_id: str, category: str, quantity: int, unit_price: float) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "category": category,
        "quantity": quantity,
        "unit_price": unit_price,
    }


def transaction(
    *,
    transaction_id: str,
    event_time: str,
    user_id: str,
    session_id: str | None,
    merchant_id: str,
    type: str,
    original_transaction_id: str | None,
    amount: float,
    currency: str,
    items: list[dict[str, Any]],
    payment_method: str,
    payment_instrument_id: str,
    device_id: str,
    ip_address: str,
    channel: str,
    location: orjson.Fragment | dict[str, Any],
) -> dict[str, Any]:
    """A ``Transaction`` payload."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "transaction_id": transaction_id,
        "event_time": event_time,
        "user_id": user_id,
    }
    if session_id is not None:
        out["session_id"] = session_id
    out["merchant_id"] = merchant_id
    out["type"] = type
    if original_transaction_id is not None:
        out["original_transaction_id"] = original_transaction_id
    out["amount"] = amount
    out["currency"] = currency
    out["items"] = items
    out["payment_method"] = payment_method
    out["payment_instrument_id"] = payment_instrument_id
    out["device_id"] = device_id
    out["ip_address"] = ip_address
    out["channel"] = channel
    out["location"] = location
    return out


_USER_EVENT_ORDER = list(UserEvent.model_fields)

USER_EVENT_OPTIONAL = tuple(
    name
    for name in optional_fields(UserEvent)
    if _USER_EVENT_ORDER.index(name) > _USER_EVENT_ORDER.index("page")
)
"""The optional fields after ``page``, in the contract's order, read from the contract:
:func:`user_event` writes them from ``extra``."""


def user_event(
    *,
    event_id: str,
    event_type: str,
    event_time: str,
    session_id: str,
    user_id: str | None,
    device_id: str,
    channel: str,
    location: orjson.Fragment | dict[str, Any],
    page: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``UserEvent`` payload; ``extra`` holds the optional fields that are set."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "event_type": event_type,
        "event_time": event_time,
        "session_id": session_id,
    }
    if user_id is not None:
        out["user_id"] = user_id
    out["device_id"] = device_id
    out["channel"] = channel
    out["location"] = location
    out["page"] = page
    if extra:
        for name in USER_EVENT_OPTIONAL:
            value = extra.get(name)
            if value is not None:
                out[name] = value
    return out


def product_update(
    *,
    product_id: str,
    event_time: str,
    change: str,
    name: str,
    category: str,
    price: float,
    cost: float,
    currency: str,
    stock: int,
    active: bool,
) -> dict[str, Any]:
    """A ``ProductUpdate`` payload."""
    return {
        "schema_version": SCHEMA_VERSION,
        "product_id": product_id,
        "event_time": event_time,
        "change": change,
        "name": name,
        "category": category,
        "price": price,
        "cost": cost,
        "currency": currency,
        "stock": stock,
        "active": active,
    }


def customer(
    *,
    customer_id: str,
    event_time: str,
    signup_time: str,
    segment: str,
    home: orjson.Fragment | dict[str, Any],
    currency: str,
    email_domain: str,
    marketing_opt_in: bool,
) -> dict[str, Any]:
    """A ``Customer`` payload."""
    return {
        "schema_version": SCHEMA_VERSION,
        "customer_id": customer_id,
        "event_time": event_time,
        "signup_time": signup_time,
        "segment": segment,
        "home": home,
        "currency": currency,
        "email_domain": email_domain,
        "marketing_opt_in": marketing_opt_in,
    }


def fraud_label(
    *, transaction_id: str, user_id: str, scenario: str, attack_id: str, event_time: str
) -> dict[str, Any]:
    """A ``FraudLabel`` payload."""
    return {
        "schema_version": SCHEMA_VERSION,
        "transaction_id": transaction_id,
        "user_id": user_id,
        "scenario": scenario,
        "attack_id": attack_id,
        "event_time": event_time,
    }
