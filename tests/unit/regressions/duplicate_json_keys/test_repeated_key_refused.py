"""A record that names a key twice was accepted with the last value (orjson, and
pydantic's parser in the user-events agent, keep the last copy), while other JSON readers
keep the first: a producer could show one amount to one reader and another to ECAP. Such
a record is refused now, at the decode stage, naming the key."""

from __future__ import annotations

import orjson
import pytest

from agents.user_events import parse
from ecap.events import EventError, FailureStage, Transaction, decode
from tests.unit.agents.sales_harness import PURCHASE

USER_EVENT = {
    "event_id": "e-1",
    "event_type": "page_view",
    "event_time": "2026-11-27T10:15:00Z",
    "session_id": "s-1",
    "device_id": "d-1",
    "channel": "web",
    "location": PURCHASE["location"],
    "page": "/",
}


def _twice(payload: dict[str, object], key: str, second: str) -> bytes:
    """``payload`` with ``"key": second`` written again after its last field."""
    raw = orjson.dumps(payload)
    return raw[:-1] + f', "{key}": {second}}}'.encode()


def test_a_top_level_key_given_twice_is_refused() -> None:
    with pytest.raises(EventError, match='duplicate key "amount"') as info:
        decode(Transaction, _twice(PURCHASE, "amount", "99999"))
    assert info.value.stage is FailureStage.DECODE


def test_a_nested_key_given_twice_is_refused() -> None:
    location = orjson.dumps(PURCHASE["location"])[:-1] + b', "country": "US"}'
    raw = orjson.dumps({**PURCHASE, "location": "<loc>"}).replace(b'"<loc>"', location)
    with pytest.raises(EventError, match='duplicate key "country"'):
        decode(Transaction, raw)


def test_the_user_events_agent_refuses_it_too() -> None:
    with pytest.raises(EventError, match='duplicate key "session_id"'):
        parse(_twice(USER_EVENT, "session_id", '"s-2"'))
