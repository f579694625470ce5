"""Bad input lands in the dead-letter topic, whole, and the workers keep running.

Runs against the package's single deployment after the stream: bad records are never
counted, so the KPIs the other modules compare do not change.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecap.events import EventError, UserEvent, decode
from ecap.generator.wire import Record
from ecap.topics import TRANSACTIONS, USER_EVENTS, dlq

from .deployment import Deployment

VALID_EVENT: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "e-1",
    "event_type": "product_view",
    "event_time": "2026-11-27T08:01:00Z",
    "session_id": "s-bad",
    "user_id": "c-1",
    "device_id": "d-1",
    "channel": "web",
    "location": {"city": "Berlin", "country": "DE", "region": "EMEA", "lat": 52.5, "lon": 13.4},
    "page": "/p/p-1",
    "product_id": "p-1",
    "price": 10.0,
}
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)


def _invalid(payload: bytes) -> bool:
    try:
        decode(UserEvent, payload)
    except EventError:
        return True
    return False


def bad_payloads() -> st.SearchStrategy[bytes]:
    """Random bytes, unicode text, wrong types, missing fields and absurd values."""
    fields = sorted(VALID_EVENT)
    wrong_type = st.sampled_from(fields).flatmap(
        lambda name: JSON_VALUES.map(lambda v: orjson.dumps({**VALID_EVENT, name: v}))
    )
    missing = st.sampled_from(fields).map(
        lambda name: orjson.dumps({k: v for k, v in VALID_EVENT.items() if k != name})
    )
    absurd = st.sampled_from(
        [
            {"price": -5.0},
            {"price": 1e12},
            {"quantity": 10**9},
            {"event_type": "teleport"},
            {"event_time": "2026-11-27T08:01:00"},
            {"event_time": "yesterday"},
            {"session_id": "s p a c e s"},
            {"page": "x" * 5000},
        ]
    ).map(lambda change: orjson.dumps({**VALID_EVENT, **change}))
    unicode_text = st.text(min_size=1, max_size=200).map(str.encode)
    random_objects = st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6).map(
        orjson.dumps
    )
    return st.one_of(
        st.binary(max_size=300), unicode_text, random_objects, wrong_type, missing, absurd
    ).filter(_invalid)


def dead_payloads(deployment: Deployment, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(value) for _, value in deployment.read_topic(dlq(topic))]


def send(deployment: Deployment, topic: str, payloads: list[bytes]) -> None:
    deployment.send(
        Record(topic, f"bad-{i}".encode(), payload, 1_795_766_460_000)
        for i, payload in enumerate(payloads)
    )


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(payloads=st.lists(bad_payloads(), min_size=5, max_size=30))
def test_fuzzed_user_events_land_in_the_dead_letter_topic_and_the_worker_goes_on(
    single: Deployment, payloads: list[bytes]
) -> None:
    before = len(dead_payloads(single, USER_EVENTS))
    send(single, USER_EVENTS, payloads)
    single.wait_until_processed()  # the worker read past every bad record, still alive
    letters = dead_payloads(single, USER_EVENTS)[before:]
    assert sorted(base64.b64decode(letter["payload_b64"]) for letter in letters) == sorted(payloads)
    assert {letter["stage"] for letter in letters} <= {"decode", "validate"}
    assert all(letter["source_topic"] == USER_EVENTS for letter in letters)


def test_an_oversized_user_event_is_dead_lettered_whole(single: Deployment) -> None:
    before = len(dead_payloads(single, USER_EVENTS))
    huge = orjson.dumps({**VALID_EVENT, "page": "/" + "x" * 1_100_000})
    send(single, USER_EVENTS, [huge])
    single.wait_until_processed()
    letters = dead_payloads(single, USER_EVENTS)[before:]
    assert len(letters) == 1
    assert base64.b64decode(letters[0]["payload_b64"]) == huge
    assert letters[0]["stage"] == "decode"
    assert "over the 1000000-byte limit" in letters[0]["error"]


def test_a_transaction_in_a_currency_outside_iso_4217_is_dead_lettered_by_the_contract(
    single: Deployment, stream: list[Record]
) -> None:
    """XXX ("no currency") is no code a shop charges in: the contract refuses it. A valid
    currency without a rate is counted instead (tests/unit/regressions/kpi_no_fx_rate_...)."""
    tx = orjson.loads(next(r.value for r in stream if r.topic == TRANSACTIONS))
    odd = orjson.dumps({**tx, "transaction_id": "tx-odd", "user_id": "u-odd", "currency": "XXX"})
    before = len(dead_payloads(single, TRANSACTIONS))
    send(single, TRANSACTIONS, [odd])
    single.wait_until_processed()
    letters = dead_payloads(single, TRANSACTIONS)[before:]
    assert [base64.b64decode(letter["payload_b64"]) for letter in letters] == [odd]
    assert letters[0]["stage"] == "validate"
    assert "'XXX' is not a supported currency" in letters[0]["error"]
