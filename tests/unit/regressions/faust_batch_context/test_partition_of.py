"""Faust finds a table write's partition from its current event, which a batch agent never
sets (``ecap.patches.faust_batch_context``): without :func:`partition_of` a write from
the agent's task fails, with it the write lands in the partition of the event given."""

from __future__ import annotations

import importlib

import faust
import pytest
from faust.events import Event
from faust.streams import current_event
from faust.types.tuples import Message

from ecap.patches import UnsupportedVersion, faust_batch_context
from ecap.patches.faust_batch_context import partition_of

APP = faust.App("unit-batch-context", broker="kafka://127.0.0.1:1", store="memory://")
TABLE = APP.Table("unit-batch-context-table", partitions=6, key_type=bytes, value_type=bytes)


def _event(topic: str, partition: int) -> Event:
    message = Message(topic, partition, 0, 0.0, 0, None, b"k", b"v", None)
    return Event(APP, b"k", b"v", None, message)


def test_a_table_write_outside_a_stream_has_no_partition() -> None:
    assert current_event() is None
    with pytest.raises(TypeError, match="outside of stream iteration"):
        TABLE.partition_for_key(b"alice")


def test_a_table_write_inside_partition_of_lands_in_the_events_partition() -> None:
    event = _event(TABLE.changelog_topic.get_topic_name(), 4)
    with partition_of(event):
        assert current_event() is event
        assert TABLE.partition_for_key(b"alice") == 4
    assert current_event() is None


def test_the_patch_refuses_a_faust_it_was_not_written_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faust, "__version__", "0.99.0")
    try:
        with pytest.raises(UnsupportedVersion, match=r"this is Faust 0\.99\.0"):
            importlib.reload(faust_batch_context)
    finally:
        monkeypatch.undo()
        importlib.reload(faust_batch_context)
