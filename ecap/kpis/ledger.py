"""The KPI ledger: per-batch deltas of every input partition, folded into one global view.

**Why a ledger.** Inputs are partitioned (``transactions`` by user, ``user-events`` by
session) and shared by the worker processes, while KPIs are global. Each worker turns one
batch of one partition into one :class:`Delta`: the increments of the minute slices it
touched, the new members of the distinct-count sets, the lateness it saw, the session
states it changed, and the range of input offsets it covers. The deltas of a batch go as one
record to a one-partition ledger topic, which every worker reads whole, folding every
delta into its :class:`Ledger`. So:

* **global values** are the sum of the partitions' increments, and distinct counts
  (unique customers, active users) are unions of exact sets, so a user seen on two
  partitions counts once; every worker holds the same view and answers every query the
  same way, with one process or several;
* **one record per batch** is written, whatever the batch size; one partition keeps every
  input partition's deltas in the order they were written (one writer per input partition
  at a time, as Kafka assigns them);
* **exactly once**: a delta names the input offsets it covers and the ledger remembers,
  per partition, the last offset applied. A batch re-read after a crash or a rebalance
  skips what the ledger already holds, and a delta already folded is ignored;
* the owner of a partition uses the ledger as its state (session states, set members),
  after reading the ledger topic to its end when the partition is assigned to it.

Owners also send, every second, one record of :class:`Heartbeat` s, one per held partition
(caught up or not, last record time), for the watermark (:mod:`ecap.kpis.windows`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ecap.events import WindowKind
from ecap.kpis.windows import (
    GRACE_MS,
    MINUTE_MS,
    RETAIN_MS,
    Watermark,
    Window,
    minute_of,
    windows_of,
)

Cell = tuple[str, str, str]
"""(metric or set name, dimension, dimension value)."""
SliceKey = tuple[int, str, str, str]
"""(minute, metric or set name, dimension, dimension value)."""

HEARTBEAT_KEY = b"heartbeats"
SESSION_LAST = 1
"""Index of the last event time in a session state."""


@dataclass
class Delta:
    """What one batch of one input partition changed."""

    partition: int
    first: int
    """First input offset the batch covers."""
    last: int
    """Last input offset the batch covers."""
    arrived_ms: int
    """Wall clock when the batch was taken."""
    watermark: int | None = None
    """Largest event time among the batch's valid records."""
    ceiling: int | None = None
    """Largest record timestamp (Kafka's) among the batch's records, at most
    ``arrived_ms``: the watermark never passes it (see :mod:`ecap.kpis.windows`)."""
    add: dict[SliceKey, int] = field(default_factory=lambda: defaultdict(int))
    members: dict[SliceKey, set[str]] = field(default_factory=lambda: defaultdict(set))
    late: dict[Window, int] = field(default_factory=lambda: defaultdict(int))
    expired: int = 0
    """Events older than the retained slices: counted here only."""
    sessions: dict[str, list[int]] = field(default_factory=dict)
    """Session id -> new state ``[seq, last event ms, ...]`` (clickstream only; see
    ``ecap.kpis.clickstream``)."""

    def see(self, event_ms: int) -> None:
        if self.watermark is None or event_ms > self.watermark:
            self.watermark = event_ms

    def mark(self) -> int | None:
        """What the batch tells the watermark: its largest event time, capped by its
        :attr:`ceiling` (a batch without one counts as it is)."""
        if self.watermark is None or self.ceiling is None:
            return self.watermark
        return min(self.watermark, self.ceiling)

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.partition,
            "f": self.first,
            "l": self.last,
            "at": self.arrived_ms,
            "wm": self.watermark,
            "ts": self.ceiling,
            "add": [[*key, n] for key, n in self.add.items()],
            "set": [[*key, sorted(members)] for key, members in self.members.items()],
            "late": [[w.kind.value, w.start_ms, n] for w, n in self.late.items()],
            "exp": self.expired,
            "ses": self.sessions,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Delta:
        # A record written before deltas had a ceiling is capped by its arrival: a ledger
        # topic that already holds an outlier (year 2999) heals when it is read again.
        delta = cls(raw["p"], raw["f"], raw["l"], raw["at"], raw["wm"], raw.get("ts", raw["at"]))
        delta.add = {(m, a, b, c): n for m, a, b, c, n in raw["add"]}
        delta.members = {(m, a, b, c): set(users) for m, a, b, c, users in raw["set"]}
        delta.late = {Window(WindowKind(k), start): n for k, start, n in raw["late"]}
        delta.expired = raw["exp"]
        delta.sessions = raw["ses"]
        return delta


@dataclass(frozen=True)
class Heartbeat:
    """An owner's report on one partition it holds."""

    partition: int
    caught_up: bool
    arrived_ms: int | None
    """Wall clock of the last record taken from the partition, if any since start."""

    def to_json(self) -> list[Any]:
        return [self.partition, self.caught_up, self.arrived_ms]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Heartbeat:
        return cls(raw[0], raw[1], raw[2])


def encode_deltas(deltas: list[Delta]) -> tuple[bytes, bytes]:
    """One ledger record for a batch's deltas. The key names the input offsets covered
    (``partition:first:last,...``) so a reader can skip a record it holds already."""
    key = ",".join(f"{d.partition}:{d.first}:{d.last}" for d in deltas).encode()
    return key, orjson.dumps([d.to_json() for d in deltas])


def encode_heartbeats(beats: list[Heartbeat]) -> tuple[bytes, bytes]:
    return HEARTBEAT_KEY, orjson.dumps([b.to_json() for b in beats])


def decode_record(key: bytes | None, value: bytes | None) -> list[Delta] | list[Heartbeat]:
    """A ledger record's deltas, or its heartbeats."""
    if value is None:
        return []
    raw: list[Any] = orjson.loads(value)
    if key == HEARTBEAT_KEY:
        return [Heartbeat.from_json(item) for item in raw]
    return [Delta.from_json(item) for item in raw]


def offsets_of(key: bytes | None) -> list[tuple[int, int, int]] | None:
    """(partition, first, last) of each delta in a record, from its key alone."""
    if key is None or key == HEARTBEAT_KEY:
        return None
    out = []
    for part in key.split(b","):
        partition, first, last = part.split(b":")
        out.append((int(partition), int(first), int(last)))
    return out


class Ledger:
    """The fold of every delta: minute slices, set members, lateness, sessions.

    ``kinds`` are the window kinds this family publishes; ``session_gap_ms`` (clickstream
    only) is how long a session state is kept after its last event.
    """

    def __init__(
        self,
        partitions: int,
        kinds: tuple[WindowKind, ...],
        session_gap_ms: int | None = None,
    ) -> None:
        self.partitions = partitions
        self.kinds = kinds
        self.session_gap_ms = session_gap_ms
        self.applied: dict[int, int] = {}
        """Input partition -> last input offset folded."""
        self.clock = Watermark(partitions)
        self.slices: dict[int, dict[Cell, int]] = {}
        self.sets: dict[int, dict[Cell, set[str]]] = {}
        self.totals: dict[Cell, int] = defaultdict(int)
        """Additive values since the ledger began (never expire)."""
        self.late: dict[Window, int] = defaultdict(int)
        self.versions: dict[int, int] = defaultdict(int)
        """Minute -> number of deltas that changed it (a window's content version)."""
        self.expired = 0
        self.sessions: dict[str, list[int]] = {}
        self._session_minutes: dict[int, set[str]] = defaultdict(set)
        self.max_event_ms: int | None = None
        """The largest event time folded, capped as the watermark's marks are: the
        "current" minute of the views."""

    # ------------------------------------------------------------------ folding

    def is_applied(self, partition: int, offset: int) -> bool:
        return offset <= self.applied.get(partition, -1)

    def apply(self, delta: Delta) -> bool:
        """Fold one delta; False (and nothing changes) if it was folded before."""
        if delta.last <= self.applied.get(delta.partition, -1):
            return False
        self.applied[delta.partition] = delta.last
        mark = delta.mark()
        if mark is not None:
            self.clock.observe_records(delta.partition, mark, delta.arrived_ms)
            if self.max_event_ms is None or mark > self.max_event_ms:
                self.max_event_ms = mark
        touched: set[int] = set()
        for (minute, metric, dim, value), n in delta.add.items():
            cell = (metric, dim, value)
            cells = self.slices.get(minute)
            if cells is None:
                cells = self.slices[minute] = defaultdict(int)
            cells[cell] += n
            self.totals[cell] += n
            touched.add(minute)
        for (minute, name, dim, value), members in delta.members.items():
            groups = self.sets.get(minute)
            if groups is None:
                groups = self.sets[minute] = defaultdict(set)
            groups[(name, dim, value)] |= members
            touched.add(minute)
        for window, n in delta.late.items():
            self.late[window] += n
        self.expired += delta.expired
        for minute in touched:
            self.versions[minute] += 1
        for session_id, state in delta.sessions.items():
            self.sessions[session_id] = state
            self._session_minutes[minute_of(state[SESSION_LAST])].add(session_id)
        return True

    def apply_heartbeat(self, beat: Heartbeat) -> None:
        self.clock.observe_heartbeat(beat.partition, beat.caught_up, beat.arrived_ms)

    def rebase(self, held: dict[int, int]) -> list[int]:
        """The input log was reset (``tables.log_resets``): forget the applied offset of
        each partition of ``held`` that is still at the offset given there, so the new
        log's records count from its first offset. A partition that moved on since (the
        same rebase read a second time) is left alone. Returns the partitions rebased."""
        rebased = [p for p, offset in sorted(held.items()) if self.applied.get(p) == offset]
        for partition in rebased:
            del self.applied[partition]
        return rebased

    def advance(self, now_ms: int) -> int | None:
        """Move the watermark on and drop what it left behind; returns the watermark."""
        watermark = self.clock.advance(now_ms)
        if watermark is None:
            return None
        horizon = minute_of(watermark - RETAIN_MS)
        for minute in [m for m in self.slices.keys() | self.sets.keys() if m < horizon]:
            self.slices.pop(minute, None)
            self.sets.pop(minute, None)
            self.versions.pop(minute, None)
        for window in [w for w in self.late if w.end_ms < horizon * MINUTE_MS]:
            del self.late[window]
        if self.session_gap_ms is not None:
            last_kept = minute_of(watermark - self.session_gap_ms) - 1
            for minute in [m for m in self._session_minutes if m < last_kept]:
                for session_id in self._session_minutes.pop(minute):
                    state = self.sessions.get(session_id)
                    if state is not None and minute_of(state[SESSION_LAST]) == minute:
                        del self.sessions[session_id]
        return watermark

    # ------------------------------------------------------------------ the owner's checks

    def lateness(self, event_ms: int) -> list[Window] | None:
        """The windows already closed for an event (empty if on time), or None if the
        event's slices are no longer kept (expired)."""
        watermark = self.clock.value
        if watermark is None:
            return []
        minute = minute_of(event_ms)
        if (minute + 1) * MINUTE_MS + GRACE_MS > watermark:
            return []
        if minute < minute_of(watermark - RETAIN_MS):
            return None
        return [w for w in windows_of(minute, self.kinds) if watermark >= w.closes_at]

    def admit(self, delta: Delta, event_ms: int) -> bool:
        """Let an event into ``delta``: count it late in the windows already closed for it
        and move the delta's watermark; False (counted as expired) if its slices are gone."""
        late = self.lateness(event_ms)
        if late is None:
            delta.expired += 1
            return False
        for window in late:
            delta.late[window] += 1
        delta.see(event_ms)
        return True

    def has_member(self, minute: int, cell: Cell, member: str) -> bool:
        groups = self.sets.get(minute)
        return groups is not None and member in groups.get(cell, ())

    # ------------------------------------------------------------------ queries

    def minutes(self) -> list[int]:
        return sorted(self.slices.keys() | self.sets.keys())

    def cells(self, window: Window) -> dict[Cell, int]:
        """Every additive value summed over ``window``."""
        out: dict[Cell, int] = defaultdict(int)
        for minute in window.minutes():
            for cell, n in self.slices.get(minute, {}).items():
                out[cell] += n
        return out

    def unions(self, window: Window) -> dict[Cell, set[str]]:
        """Every set united over ``window``."""
        out: dict[Cell, set[str]] = defaultdict(set)
        for minute in window.minutes():
            for cell, members in self.sets.get(minute, {}).items():
                out[cell] |= members
        return out

    def version(self, window: Window) -> int:
        return sum(self.versions.get(m, 0) for m in window.minutes())

    def windows(self) -> Iterator[Window]:
        """Every window of this family's kinds that holds at least one kept slice."""
        seen: set[Window] = set()
        for minute in self.minutes():
            for window in windows_of(minute, self.kinds):
                if window not in seen:
                    seen.add(window)
                    yield window

    def current_minute(self) -> int | None:
        """The minute of the latest event time folded."""
        return None if self.max_event_ms is None else minute_of(self.max_event_ms)


class Publisher:
    """Which windows the publishing worker must send to ``analytics-results`` now.

    A closed window is sent (``final``) once, and again whenever a later delta changes
    it (late events). Open tumbling windows are sent as provisional when they changed.
    """

    def __init__(self) -> None:
        self.final: dict[Window, int] = {}
        self.provisional: dict[Window, int] = {}

    def due(self, ledger: Ledger, provisional: bool) -> list[tuple[Window, bool]]:
        out: list[tuple[Window, bool]] = []
        for window in ledger.windows():
            version = ledger.version(window)
            if ledger.clock.is_closed(window):
                if self.final.get(window) != version:
                    self.final[window] = version
                    out.append((window, True))
            elif (
                provisional
                and window.kind is WindowKind.TUMBLING_1M
                and self.provisional.get(window) != version
            ):
                self.provisional[window] = version
                out.append((window, False))
        self._forget(ledger)
        return out

    def _forget(self, ledger: Ledger) -> None:
        minutes = ledger.minutes()
        if not minutes:
            return
        first = minutes[0] * MINUTE_MS
        for book in (self.final, self.provisional):
            for window in [w for w in book if w.end_ms <= first]:
                del book[window]
