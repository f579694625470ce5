"""Plausible event times: the producer's ``event_time`` checked against a clock ECAP trusts.

Every contract carries an ``event_time`` that the producer writes. One record stamped
``2999-12-31`` used to move the KPI watermark to year 2999 for good (every later event
counted as expired), become a user's "last transaction" in the fraud state, and make the
lake model customers "as of 2999". So an event time is checked before it is used:

* **the reference** is the record's timestamp in Kafka (the producer's send time, or the
  broker's append time on a ``LogAppendTime`` topic); the worker's wall clock where the
  record carries none (Kafka's -1) or one before :data:`EARLIEST` (a zero);
* **ahead**: an event may lie at most ``ECAP_EVENT_TIME_MAX_AHEAD`` (default one day)
  after the reference, and after the wall clock: clocks drift by seconds or a time zone,
  not by days, and nothing is sold tomorrow. The wall clock caps a record timestamp that
  is itself in the future, so a producer that stamps both with 2999 is caught too;
* **behind**: an event may lie at most ``ECAP_EVENT_TIME_MAX_BEHIND`` (default seven days,
  the longest retention of an input topic) before the reference. A live source sends
  what happened lately; an app that was offline for days still fits;
* **never before** :data:`EARLIEST` (1990-01-01), whatever the reference: a record
  stamped 1970 with a 1970 record timestamp is a zero, not history.

A backfill or a replay keeps working: ``ecap generate history --to-kafka`` stamps each
record with its event time (``ecap.generator.sinks``), so the reference moves with the
history, and ``--orders`` files are bounded by :data:`EARLIEST` and the run's wall clock
only (``spark_jobs.orders_file``). A producer that backfills must do the same.

What falls outside is dead-lettered (stage ``validate``) with a message that says which
bound it broke and what to do; ``ecap_event_time_rejected_total`` counts it per bound.
This module is pure: integers in, an :class:`EventTimeError` or nothing out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from ecap.events import EventError, FailureStage
from ecap.settings import Settings

__all__ = [
    "EARLIEST",
    "EARLIEST_MS",
    "MESSAGE_PREFIX",
    "Bound",
    "Bounds",
    "EventTimeError",
    "record_ms",
    "to_ms",
]

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
"""No event is older than this, whatever its record timestamp says."""
EARLIEST_MS = int(EARLIEST.timestamp() * 1000)
_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
MESSAGE_PREFIX = "event time "
"""Every :class:`EventTimeError` message starts so (the batch side counts them by it)."""


class Bound(StrEnum):
    """Which bound an event time broke."""

    AHEAD = "ahead"
    BEHIND = "behind"
    EARLIEST = "earliest"


class EventTimeError(EventError):
    """An event time outside the bounds; a dead letter of stage ``validate``."""

    def __init__(self, message: str, bound: Bound) -> None:
        super().__init__(MESSAGE_PREFIX + message, FailureStage.VALIDATE)
        self.bound = bound


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(moment.timestamp() * 1000)


def record_ms(timestamp_s: float | None) -> int | None:
    """A record timestamp as Faust gives it (seconds, or None) in epoch milliseconds."""
    return None if timestamp_s is None else int(timestamp_s * 1000)


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms since the epoch"


def _span(ms: int) -> str:
    if ms >= 2 * _DAY_MS:
        return f"{ms // _DAY_MS:,} days"
    if ms >= 2 * _HOUR_MS:
        return f"{ms / _HOUR_MS:.3g} hours"
    return f"{ms / 1000:.3g} s"


@dataclass(frozen=True)
class Bounds:
    """How far an event time may stray from its reference (see the module docstring)."""

    max_ahead_ms: int
    max_behind_ms: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        return cls(
            int(settings.event_time_max_ahead.total_seconds() * 1000),
            int(settings.event_time_max_behind.total_seconds() * 1000),
        )

    def check(self, event_ms: int, record_ms: int | None, now_ms: int) -> None:
        """Raise :class:`EventTimeError` unless ``event_ms`` is plausible for a record
        stamped ``record_ms`` (None, or before :data:`EARLIEST`: no timestamp) read at
        ``now_ms``."""
        if record_ms is not None and record_ms >= EARLIEST_MS:
            reference, what = record_ms, "the record's timestamp"
        else:
            reference, what = now_ms, "the wall clock"
        if event_ms < EARLIEST_MS:
            raise EventTimeError(
                f"{_iso(event_ms)} is before {_iso(EARLIEST_MS)}: fix the producer's "
                "event_time (a zero or a unit error, e.g. seconds for milliseconds)",
                Bound.EARLIEST,
            )
        if event_ms > reference + self.max_ahead_ms or event_ms > now_ms + self.max_ahead_ms:
            if now_ms < reference:
                reference, what = now_ms, "the wall clock"
            raise EventTimeError(
                f"{_iso(event_ms)} is {_span(event_ms - reference)} after {what} "
                f"({_iso(reference)}); at most {_span(self.max_ahead_ms)} is accepted "
                "(ECAP_EVENT_TIME_MAX_AHEAD): fix the producer's clock or its event_time",
                Bound.AHEAD,
            )
        if event_ms < reference - self.max_behind_ms:
            raise EventTimeError(
                f"{_iso(event_ms)} is {_span(reference - event_ms)} before {what} "
                f"({_iso(reference)}); at most {_span(self.max_behind_ms)} is accepted "
                "(ECAP_EVENT_TIME_MAX_BEHIND): a backfill must stamp each record with its "
                "event time, as 'ecap generate history --to-kafka' does",
                Bound.BEHIND,
            )

    def check_time(self, event_time: datetime, record_ms: int | None, now_ms: int) -> int:
        """:meth:`check` for a datetime; returns its epoch milliseconds."""
        event_ms = to_ms(event_time)
        self.check(event_ms, record_ms, now_ms)
        return event_ms
