"""Tell Faust which event a batch's table reads and writes belong to.

The bug. Faust picks the RocksDB partition and the changelog partition of a table access
from its current-event context variable (``faust.streams._current_event``), which its own
stream iterator sets per event. An agent that takes its records in batches
(``ecap.kafka.batches``) never goes through that iterator, so a table write from the
agent's task has no current event: Faust raises, or (with an event left over from another
context) writes the key into the wrong partition.

The fix. :func:`partition_of` sets the variable to one event of the partition being
processed for the length of a block; the agents wrap each partition's reads and writes of a
batch in it. Regression test: ``tests/unit/regressions/faust_batch_context/``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import faust
from faust.streams import _current_event
from faust.types import EventT

from ecap.patches import require

__all__ = ["SUPPORTED", "partition_of"]

SUPPORTED = ("0.15.3",)
"""faust-streaming versions whose ``_current_event`` this module sets."""

require("Faust", faust.__version__, SUPPORTED, __name__)


@contextmanager
def partition_of(event: EventT) -> Iterator[None]:
    """Make table reads and writes inside the block use ``event``'s partition."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
