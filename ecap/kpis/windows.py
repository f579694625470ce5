"""Event-time windows and the watermark that closes them.

Every KPI is kept per partition and per **minute slice** of event time. The published
windows are built from slices, so one event updates one slice whatever the window:

* ``tumbling_1m``: one slice;
* ``hopping_1h``: one hour, starting every :data:`HOP_MS` (12 windows hold each minute);
* ``sliding_5m``: the five minutes before each minute boundary (active users/sessions).

**Watermark.** Each input partition reports the largest event time it has applied and,
through its owner's heartbeat, whether it is caught up and when it last had a record. The
watermark ``W`` is the smallest event time among the partitions still receiving records
(lagging, or a record within :data:`IDLE_MS`), so a partition being caught up or replayed
holds windows open. When every partition is quiet the stream is deemed to go on in real
time: ``W`` moves on from the last event time at wall-clock speed. Until every partition
has reported once, ``W`` is unknown and nothing closes. ``W`` never goes back.

**One outlier cannot drag ``W``.** Because ``W`` never goes back, one event time far
ahead would close every window up to it and make every later event expired. Event times
are checked on arrival (:mod:`ecap.event_time`: at most a day ahead of the record's
timestamp), but an event inside that bound could still pull ``W`` a day ahead. So a
partition's mark is not its largest event time but that, **capped by the largest Kafka
record timestamp of the batch, and by the wall clock when the batch was taken**
(``Delta.ceiling``). Why that cap, and not "the wall clock plus the allowed skew":

1. the record timestamp is set by the producer's send (or the broker's append), not by
   the payload, and a live event is sent after it happens, so on a live stream the cap
   equals the event time and changes nothing;
2. a backfill or a replay stamps each record with its event time, so there too the cap
   is the event time: replays keep full event-time semantics, windows close as the
   history goes by;
3. an event stamped ahead of its record (a device clock a day fast) is still counted
   in its own minute, but moves ``W`` no further than its record's timestamp; and the
   wall clock caps a record timestamp that is itself in the future. A watermark allowed
   to run to "wall clock + skew" would still close a day of windows early;
4. the cap only ever lowers a mark, so it can close a window later, never earlier, and
   never expires an event that would have counted.

So ``W`` never passes the wall clock of the workers. A ledger record written before
deltas carried their ceiling is capped by its arrival time, which heals a ledger that
already holds an outlier.

**Closing and lateness.** A window is closed once ``W >= end + GRACE_MS``; the worker that
owns input partition 0 then publishes it with ``final=True`` (a timer does this, so
windows close when traffic stops). An event whose window is already closed when it is
processed is *late*: it still counts in the window's values and in its ``late_events``,
and the window is published again. Events older than :data:`RETAIN_MS` behind ``W`` find
their slices gone: they are counted as expired, per worker metric and view, and nowhere
else. Windows never expire by the wall clock, so a replay or a backfill is counted in full.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecap.events import WindowKind

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
HOP_MS = 5 * MINUTE_MS
"""Advance of the hopping hour windows."""
SLIDING_MS = 5 * MINUTE_MS
"""Length of the sliding window of active users and sessions."""
GRACE_MS = 10_000
"""How long after its end (in event time) a window waits for stragglers."""
IDLE_MS = 3_000
"""A partition with no record for this long (wall clock) and no lag is quiet."""
RETAIN_MS = 2 * HOUR_MS
"""Slices older than this behind the watermark are dropped once published."""

_KIND_LENGTH = {
    WindowKind.TUMBLING_1M: MINUTE_MS,
    WindowKind.HOPPING_1H: HOUR_MS,
    WindowKind.SLIDING_5M: SLIDING_MS,
}


@dataclass(frozen=True, order=True)
class Window:
    """One window of event time: ``[start_ms, end_ms)``."""

    kind: WindowKind
    start_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + _KIND_LENGTH[self.kind]

    @property
    def closes_at(self) -> int:
        """The watermark at which the window is final."""
        return self.end_ms + GRACE_MS

    def minutes(self) -> range:
        """The minute slices (minute numbers since the epoch) the window is made of."""
        return range(self.start_ms // MINUTE_MS, self.end_ms // MINUTE_MS)


def minute_of(event_ms: int) -> int:
    """The minute slice of an event time (minutes since the epoch)."""
    return event_ms // MINUTE_MS


def tumbling(minute: int) -> Window:
    return Window(WindowKind.TUMBLING_1M, minute * MINUTE_MS)


def hopping(minute: int) -> list[Window]:
    """The hopping hour windows that contain ``minute``, oldest first."""
    at = minute * MINUTE_MS
    last = at - at % HOP_MS
    first = last - HOUR_MS + HOP_MS
    return [Window(WindowKind.HOPPING_1H, start) for start in range(first, last + 1, HOP_MS)]


def sliding(minute: int) -> list[Window]:
    """The sliding five-minute windows (one ending at each minute boundary) holding it."""
    first = minute * MINUTE_MS - SLIDING_MS + MINUTE_MS
    return [
        Window(WindowKind.SLIDING_5M, start)
        for start in range(first, minute * MINUTE_MS + 1, MINUTE_MS)
    ]


def windows_of(minute: int, kinds: tuple[WindowKind, ...]) -> list[Window]:
    """Every window of the given kinds that contains ``minute``."""
    found: list[Window] = []
    if WindowKind.TUMBLING_1M in kinds:
        found.append(tumbling(minute))
    if WindowKind.HOPPING_1H in kinds:
        found.extend(hopping(minute))
    if WindowKind.SLIDING_5M in kinds:
        found.extend(sliding(minute))
    return found


@dataclass
class PartitionClock:
    """What the watermark knows about one input partition."""

    watermark: int | None = None
    """Largest event time applied (ms), or None before the first record."""
    arrived_ms: int | None = None
    """Wall clock (ms) when the owner last took a record from the partition."""
    caught_up: bool = False
    """The owner's last heartbeat said it had read to the end of the partition."""


class Watermark:
    """The stream's event-time watermark over ``partitions`` input partitions."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.clocks: dict[int, PartitionClock] = {}
        self.value: int | None = None
        self._last_event_ms: int | None = None
        self._last_arrival_ms: int | None = None

    def _clock(self, partition: int) -> PartitionClock:
        clock = self.clocks.get(partition)
        if clock is None:
            clock = self.clocks[partition] = PartitionClock()
        return clock

    def observe_records(self, partition: int, event_ms: int, arrived_ms: int) -> None:
        """A batch of records up to event time ``event_ms`` was applied."""
        clock = self._clock(partition)
        if clock.watermark is None or event_ms > clock.watermark:
            clock.watermark = event_ms
        clock.arrived_ms = max(clock.arrived_ms or 0, arrived_ms)
        if self._last_event_ms is None or event_ms > self._last_event_ms:
            self._last_event_ms = event_ms
        self._last_arrival_ms = max(self._last_arrival_ms or 0, arrived_ms)

    def observe_heartbeat(self, partition: int, caught_up: bool, arrived_ms: int | None) -> None:
        """The owner's periodic report on a partition it holds."""
        clock = self._clock(partition)
        clock.caught_up = caught_up
        if arrived_ms is not None:
            clock.arrived_ms = max(clock.arrived_ms or 0, arrived_ms)

    def advance(self, now_ms: int) -> int | None:
        """Recompute ``W`` at wall-clock time ``now_ms`` and return it."""
        if len(self.clocks) < self.partitions:
            return self.value
        receiving = [
            clock
            for clock in self.clocks.values()
            if not clock.caught_up
            or (clock.arrived_ms is not None and now_ms - clock.arrived_ms < IDLE_MS)
        ]
        candidate: int | None
        if receiving:
            marks = [clock.watermark for clock in receiving if clock.watermark is not None]
            candidate = min(marks) if len(marks) == len(receiving) else None
        elif self._last_event_ms is None or self._last_arrival_ms is None:
            candidate = None
        else:
            candidate = self._last_event_ms + max(0, now_ms - self._last_arrival_ms)
        if candidate is not None and (self.value is None or candidate > self.value):
            self.value = candidate
        return self.value

    def is_closed(self, window: Window) -> bool:
        return self.value is not None and self.value >= window.closes_at
