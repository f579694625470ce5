"""The event contracts: round trips, and bad input rejected with the field named."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ecap import events
from ecap.events import (
    AnalyticsResult,
    Customer,
    DeadLetter,
    EventError,
    FailureStage,
    FraudAlert,
    FraudFeedback,
    FraudLabel,
    ProductUpdate,
    Transaction,
    UserEvent,
    decode,
    encode,
)

T0 = "2026-11-27T10:15:00Z"
BERLIN = {"city": "Berlin", "country": "DE", "region": "EMEA", "lat": 52.52, "lon": 13.405}

TRANSACTION = {
    "schema_version": 2,
    "transaction_id": "tx-1",
    "event_time": T0,
    "user_id": "u-1",
    "session_id": "s-1",
    "merchant_id": "m-1",
    "type": "purchase",
    "amount": 59.98,
    "currency": "EUR",
    "items": [{"product_id": "p-1", "category": "books", "quantity": 2, "unit_price": 29.99}],
    "payment_method": "credit_card",
    "payment_instrument_id": "pi-1",
    "device_id": "d-1",
    "ip_address": "203.0.113.7",
    "channel": "web",
    "location": BERLIN,
}
USER_EVENT = {
    "schema_version": 2,
    "event_id": "e-1",
    "event_type": "add_to_cart",
    "event_time": T0,
    "session_id": "s-1",
    "user_id": "u-1",
    "device_id": "d-1",
    "channel": "app",
    "location": BERLIN,
    "page": "/p/p-1",
    "product_id": "p-1",
    "category": "books",
    "price": 29.99,
    "quantity": 2,
}
PRODUCT = {
    "schema_version": 2,
    "product_id": "p-1",
    "event_time": T0,
    "change": "price_changed",
    "name": "A Book",
    "category": "books",
    "price": 29.99,
    "cost": 17.5,
    "currency": "EUR",
    "stock": 12,
    "active": True,
}
CUSTOMER = {
    "schema_version": 2,
    "customer_id": "u-1",
    "event_time": T0,
    "signup_time": "2025-03-01T08:00:00Z",
    "segment": "loyal",
    "home": BERLIN,
    "currency": "EUR",
    "email_domain": "example.org",
    "marketing_opt_in": False,
}
ALERT = {
    "schema_version": 2,
    "alert_id": "a-1",
    "transaction_id": "tx-1",
    "user_id": "u-1",
    "merchant_id": "m-1",
    "amount": 59.98,
    "currency": "EUR",
    "score": 0.93,
    "priority": "CRITICAL",
    "reasons": [{"code": "new_device", "description": "unknown device", "contribution": 0.6}],
    "ruleset_version": 3,
    "model_version": "hst-1",
    "event_time": T0,
    "detection_time": "2026-11-27T10:15:00.120000Z",
}
LABEL = {
    "schema_version": 2,
    "transaction_id": "tx-1",
    "user_id": "u-1",
    "scenario": "card_testing",
    "attack_id": "atk-1",
    "event_time": T0,
}
RESULT = {
    "schema_version": 2,
    "metric": "revenue",
    "window": "tumbling_1m",
    "window_start": "2026-11-27T10:15:00Z",
    "window_end": "2026-11-27T10:16:00Z",
    "dimension": "category",
    "dimension_value": "books",
    "value": 59.98,
    "final": True,
    "late_events": 0,
    "computed_at": "2026-11-27T10:16:05Z",
}
DEAD = {
    "schema_version": 2,
    "source_topic": "transactions",
    "partition": 3,
    "offset": 42,
    "payload_b64": "bm90IGpzb24=",
    "error": "not valid JSON",
    "stage": "decode",
    "worker": "transactions@host-1",
    "failed_at": T0,
}

FEEDBACK = {
    "schema_version": 2,
    "case_id": 17,
    "alert_id": "al-5d0c",
    "transaction_id": "tx-000123",
    "user_id": "c-000042",
    "merchant_id": "m-0007",
    "verdict": "confirmed",
    "reasons": ["card_testing_burst", "anomaly_model"],
    "features": {"amount": 1.5, "unknown_instruments_1h": 3.0},
    "note": "customer confirmed the card was stolen",
    "decided_by": "analyst@example.com",
    "decided_at": "2026-11-27T10:20:00Z",
}
FIXTURES = [
    (Transaction, TRANSACTION),
    (UserEvent, USER_EVENT),
    (ProductUpdate, PRODUCT),
    (Customer, CUSTOMER),
    (FraudAlert, ALERT),
    (FraudLabel, LABEL),
    (FraudFeedback, FEEDBACK),
    (AnalyticsResult, RESULT),
    (DeadLetter, DEAD),
]


@pytest.mark.parametrize(("model", "payload"), FIXTURES, ids=lambda v: getattr(v, "__name__", ""))
def test_encode_decode_round_trip_keeps_every_field(
    model: type[events.Event], payload: dict
) -> None:
    event = decode(model, orjson.dumps(payload))
    assert orjson.loads(encode(event)) == payload


@pytest.mark.parametrize(("model", "payload"), FIXTURES, ids=lambda v: getattr(v, "__name__", ""))
def test_encoded_event_validates_against_exported_schema(
    model: type[events.Event], payload: dict
) -> None:
    name = next(n for n, m in events.CONTRACTS.items() if m is model)
    schema = events.json_schemas()[name]
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert (
        list(validator.iter_errors(orjson.loads(encode(decode(model, orjson.dumps(payload))))))
        == []
    )


def test_every_contract_is_exported() -> None:
    assert set(events.json_schemas()) == {
        "transaction",
        "user_event",
        "product_update",
        "customer",
        "fraud_alert",
        "fraud_label",
        "fraud_feedback",
        "analytics_result",
        "dead_letter",
    }


def test_user_event_types_are_the_fourteen_documented() -> None:
    assert len(events.UserEventType) == 14


def test_optional_fields_are_those_defaulting_to_none_in_declaration_order() -> None:
    # type and schema_version have defaults too, but encode always writes them.
    assert events.optional_fields(Transaction) == ("session_id", "original_transaction_id")


def test_event_time_is_normalised_to_utc() -> None:
    payload = {**TRANSACTION, "event_time": "2026-11-27T11:15:00+01:00"}
    event = decode(Transaction, orjson.dumps(payload))
    assert event.event_time == datetime(2026, 11, 27, 10, 15, tzinfo=UTC)


def _error(model: type[events.Event], payload: object) -> EventError:
    with pytest.raises(EventError) as info:
        decode(model, orjson.dumps(payload))
    return info.value


def test_missing_field_is_named() -> None:
    payload = {k: v for k, v in TRANSACTION.items() if k != "merchant_id"}
    assert "merchant_id: Field required" in str(_error(Transaction, payload))


def test_wrong_type_is_named() -> None:
    error = _error(Transaction, {**TRANSACTION, "amount": "lots"})
    assert "amount:" in str(error)
    assert error.stage is FailureStage.VALIDATE


def test_negative_amount_is_rejected() -> None:
    assert "amount: Value error, an amount must be a finite number, 0 or more" in str(
        _error(Transaction, {**TRANSACTION, "amount": -5})
    )


def test_an_amount_above_a_million_euros_is_rejected() -> None:
    assert "amount 1000000.01 EUR is above the plausibility limit of 1,000,000 EUR" in str(
        _error(Transaction, {**TRANSACTION, "amount": 1_000_000.01})
    )


def test_the_plausibility_limit_is_in_euros_whatever_the_currency() -> None:
    # 1,000,000 EUR is 163,043,478.26... JPY at 0.92 / 150 EUR per JPY.
    yen = {
        **TRANSACTION,
        "currency": "JPY",
        "items": [{**TRANSACTION["items"][0], "unit_price": 1}],
    }
    assert decode(Transaction, orjson.dumps({**yen, "amount": 163_043_478})).amount == 163_043_478
    assert "above the plausibility limit" in str(
        _error(Transaction, {**yen, "amount": 163_043_479})
    )


def test_fractions_of_a_cent_are_rejected() -> None:
    assert "more decimals than EUR has (2)" in str(
        _error(Transaction, {**TRANSACTION, "amount": 1.005})
    )


def test_fractions_of_a_yen_are_rejected() -> None:
    yen = {
        **TRANSACTION,
        "currency": "JPY",
        "items": [{**TRANSACTION["items"][0], "unit_price": 1}],
    }
    assert "more decimals than JPY has (0)" in str(_error(Transaction, {**yen, "amount": 1498.5}))


def test_a_line_price_is_checked_against_the_transaction_currency() -> None:
    payload = {**TRANSACTION, "items": [{**TRANSACTION["items"][0], "unit_price": 29.995}]}
    assert "items.0.unit_price 29.995 has more decimals than EUR has (2)" in str(
        _error(Transaction, payload)
    )


def test_an_integer_amount_stays_an_integer() -> None:
    event = decode(Transaction, orjson.dumps({**TRANSACTION, "amount": 60}))
    assert type(event.amount) is int
    assert b'"amount":60,' in encode(event)


def test_a_version_1_record_may_keep_two_decimals_in_any_currency() -> None:
    yen = {**TRANSACTION, "currency": "JPY", "schema_version": 1, "amount": 1498.5}
    event = decode(Transaction, orjson.dumps(yen))
    assert (event.schema_version, event.amount) == (1, 1498.5)
    assert orjson.loads(encode(event)) == yen


def test_a_version_1_record_has_the_same_plausibility_limit() -> None:
    payload = {**TRANSACTION, "schema_version": 1, "amount": 1_000_000.01}
    assert "above the plausibility limit" in str(_error(Transaction, payload))


def test_a_currency_that_is_no_money_is_rejected() -> None:
    for code in ("XAU", "XDR", "XTS", "XXX", "ABC"):
        assert f"currency: Value error, '{code}' is not a supported currency" in str(
            _error(Transaction, {**TRANSACTION, "currency": code})
        )


def test_a_product_price_is_checked_against_its_currency() -> None:
    assert "cost 17.505 has more decimals than EUR has (2)" in str(
        _error(ProductUpdate, {**PRODUCT, "cost": 17.505})
    )


def test_a_user_event_price_has_at_most_the_decimals_of_any_currency() -> None:
    assert decode(UserEvent, orjson.dumps({**USER_EVENT, "price": 12.3456})).price == 12.3456
    assert "price 12.34567 has more than 4 decimals" in str(
        _error(UserEvent, {**USER_EVENT, "price": 12.34567})
    )


@pytest.mark.parametrize(
    ("model", "payload", "field", "value"),
    [
        (FraudAlert, ALERT, "score", '"0.9"'),
        (FraudAlert, ALERT, "score", "true"),
        (FraudAlert, ALERT, "ruleset_version", '"3"'),
        (FraudAlert, ALERT, "ruleset_version", "3.0"),
        (Transaction, TRANSACTION, "location", orjson.dumps({**BERLIN, "lat": "52.5"}).decode()),
        (UserEvent, USER_EVENT, "quantity", '"2"'),
        (UserEvent, USER_EVENT, "quantity", "true"),
        (ProductUpdate, PRODUCT, "stock", '"12"'),
        (ProductUpdate, PRODUCT, "active", '"true"'),
        (ProductUpdate, PRODUCT, "active", "1"),
        (AnalyticsResult, RESULT, "final", '"yes"'),
        (AnalyticsResult, RESULT, "value", "1e400"),
        (FraudFeedback, FEEDBACK, "features", '{"amount": "1.5"}'),
        (DeadLetter, DEAD, "offset", str(2**64)),
        (Transaction, TRANSACTION, "schema_version", "true"),
    ],
)
def test_numbers_and_flags_are_not_coerced(
    model: type[events.Event], payload: dict, field: str, value: str
) -> None:
    raw = orjson.dumps({**payload, field: "<value>"}).replace(b'"<value>"', value.encode())
    with pytest.raises(EventError) as info:
        decode(model, raw)
    assert f"{field}" in str(info.value)


def test_naive_timestamp_is_rejected() -> None:
    assert "event_time" in str(
        _error(Transaction, {**TRANSACTION, "event_time": "2026-11-27T10:15:00"})
    )


def test_unknown_field_is_rejected() -> None:
    assert "is_fraud: Extra inputs are not permitted" in str(
        _error(Transaction, {**TRANSACTION, "is_fraud": True})
    )


def test_nested_field_is_named_with_its_path() -> None:
    payload = {**TRANSACTION, "location": {**BERLIN, "lat": 123.0}}
    assert "location.lat:" in str(_error(Transaction, payload))


def test_refund_needs_the_original_purchase() -> None:
    assert "original_transaction_id is required" in str(
        _error(Transaction, {**TRANSACTION, "type": "refund"})
    )


def test_product_events_need_a_product() -> None:
    payload = {k: v for k, v in USER_EVENT.items() if k != "product_id"}
    assert "product_id is required for add_to_cart events" in str(_error(UserEvent, payload))


def test_search_needs_a_query() -> None:
    payload = {**USER_EVENT, "event_type": "search"}
    assert "search_query is required for search events" in str(_error(UserEvent, payload))


def test_unknown_event_type_is_named() -> None:
    assert "event_type:" in str(_error(UserEvent, {**USER_EVENT, "event_type": "teleport"}))


def test_unknown_schema_version_is_rejected() -> None:
    assert "schema_version:" in str(_error(Transaction, {**TRANSACTION, "schema_version": 3}))


def test_a_record_without_a_version_is_read_as_the_current_one() -> None:
    payload = {k: v for k, v in TRANSACTION.items() if k != "schema_version"}
    assert decode(Transaction, orjson.dumps(payload)).schema_version == events.SCHEMA_VERSION


def test_window_must_end_after_it_starts() -> None:
    payload = {**RESULT, "window_end": RESULT["window_start"]}
    assert "window_end must be after window_start" in str(_error(AnalyticsResult, payload))


def test_malformed_json_fails_at_decode_stage() -> None:
    with pytest.raises(EventError) as info:
        decode(Transaction, b'{"transaction_id": ')
    assert info.value.stage is FailureStage.DECODE
    assert "not valid JSON" in str(info.value)


def test_json_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(EventError, match="expected a JSON object, got list"):
        decode(Transaction, b"[1, 2]")


def test_oversized_record_is_rejected_before_parsing() -> None:
    with pytest.raises(EventError, match="over the 1000000-byte limit"):
        decode(Transaction, b" " * (events.MAX_RECORD_BYTES + 1))


def test_dead_letter_keeps_the_original_bytes() -> None:
    assert decode(DeadLetter, orjson.dumps(DEAD)).payload() == b"not json"


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_event_error_or_decode(data: bytes) -> None:
    try:
        decode(Transaction, data)
    except EventError as exc:
        assert exc.stage in (FailureStage.DECODE, FailureStage.VALIDATE)


@given(
    st.dictionaries(
        st.sampled_from(sorted(TRANSACTION)),
        st.one_of(
            st.none(),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(),
            st.text(max_size=30),
            st.booleans(),
        ),
    )
)
def test_wrong_field_values_raise_event_error(overrides: dict) -> None:
    payload = {**TRANSACTION, **overrides}
    try:
        event = decode(Transaction, orjson.dumps(payload))
    except EventError as exc:
        assert exc.stage is FailureStage.VALIDATE
        assert str(exc).startswith("invalid Transaction: ")
    else:
        assert decode(Transaction, encode(event)) == event


def test_a_case_id_starts_at_one() -> None:
    assert "case_id: Input should be greater than or equal to 1" in str(
        _error(FraudFeedback, {**FEEDBACK, "case_id": 0})
    )
