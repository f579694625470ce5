"""The two ledger records that carry a KPI ledger across a reset log: rebases and snapshots.

Written by ``tables.kpi_ledger_topic`` when it finds a log reset (``tables.log_resets``):

* a **rebase**: the input topic's log was reset, so the ledger's applied offsets point
  into a log that is gone and would count every record of the new one as a duplicate.
  The record names, per partition, the applied offset it replaces, and the input topic's
  new id; folding it (:meth:`~ecap.kpis.ledger.Ledger.rebase`) forgets those offsets in
  every worker at the same point of the ledger, and folding it twice changes nothing;
* a **snapshot**: the ledger topic itself was emptied (a restarted embedded broker), so
  a worker starting later would find no history. A worker that kept its ledger writes it
  whole (cut into parts under the producer's request limit) at the start of the new log,
  before any delta; a worker that has folded nothing yet loads the first snapshot it meets
  (:func:`restore`), any other ignores it.

The event-time clock is not in a snapshot: it is rebuilt from the deltas and heartbeats
that follow within a second or two.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson

from ecap.events import WindowKind
from ecap.kpis.ledger import SESSION_LAST, Ledger
from ecap.kpis.windows import Window, minute_of

REBASE_KEY = b"ledger-rebase"
SNAPSHOT_KEY = b"ledger-snapshot"
SNAPSHOT_VERSION = 1
PART_BYTES = 512 * 1024
"""Largest part of a snapshot: far under the 1 MB a broker takes per record by default."""


def is_reset_record(key: bytes | None) -> bool:
    return key in (REBASE_KEY, SNAPSHOT_KEY)


@dataclass(frozen=True)
class Rebase:
    """The input log was reset: forget ``held`` (partition -> applied offset)."""

    held: dict[int, int]
    ends: dict[int, int]
    """Partition -> end offset of the new input log when the reset was found."""
    source_id: str | None
    """The input topic's id on the new log, when the broker tells it."""

    def encode(self) -> tuple[bytes, bytes]:
        return REBASE_KEY, orjson.dumps(
            {
                "held": {str(p): o for p, o in self.held.items()},
                "ends": {str(p): o for p, o in self.ends.items()},
                "id": self.source_id,
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> Rebase:
        raw = orjson.loads(value)
        return cls(
            {int(p): int(o) for p, o in raw["held"].items()},
            {int(p): int(o) for p, o in raw["ends"].items()},
            raw["id"],
        )


@dataclass(frozen=True)
class SnapshotPart:
    snapshot_id: str
    part: int
    parts: int
    body: bytes


def snapshot_records(
    ledger: Ledger, source_id: str | None, snapshot_id: str
) -> list[tuple[bytes, bytes]]:
    """The ledger as ledger records (key, value), each under :data:`PART_BYTES`."""
    body = orjson.dumps(_state(ledger, source_id))
    chunks = [body[i : i + PART_BYTES] for i in range(0, len(body), PART_BYTES)]
    return [
        (
            SNAPSHOT_KEY,
            orjson.dumps({"id": snapshot_id, "part": n, "parts": len(chunks)}) + b"\n" + chunk,
        )
        for n, chunk in enumerate(chunks)
    ]


def decode_part(value: bytes) -> SnapshotPart:
    head, _, body = value.partition(b"\n")
    raw = orjson.loads(head)
    return SnapshotPart(str(raw["id"]), int(raw["part"]), int(raw["parts"]), body)


def _state(ledger: Ledger, source_id: str | None) -> dict[str, Any]:
    return {
        "v": SNAPSHOT_VERSION,
        "source_id": source_id,
        "applied": {str(p): o for p, o in ledger.applied.items()},
        "slices": [
            [m, *cell, n] for m, cells in ledger.slices.items() for cell, n in cells.items()
        ],
        "sets": [
            [m, *cell, sorted(members)]
            for m, groups in ledger.sets.items()
            for cell, members in groups.items()
        ],
        "totals": [[*cell, n] for cell, n in ledger.totals.items()],
        "late": [[w.kind.value, w.start_ms, n] for w, n in ledger.late.items()],
        "versions": [[m, n] for m, n in ledger.versions.items()],
        "expired": ledger.expired,
        "sessions": ledger.sessions,
        "max_event_ms": ledger.max_event_ms,
    }


def restore(ledger: Ledger, body: bytes) -> str | None:
    """Load a whole snapshot (its parts joined) into an empty ``ledger``; returns the input
    topic id its offsets refer to."""
    raw = orjson.loads(body)
    if raw.get("v") != SNAPSHOT_VERSION:
        raise ValueError(f"ledger snapshot version {raw.get('v')} is not {SNAPSHOT_VERSION}")
    # What was folded before the snapshot (a delta sent while the broker came back) is in
    # the snapshot too: its writer had read the new log to its end first.
    ledger.slices.clear()
    ledger.sets.clear()
    ledger.totals.clear()
    ledger.late.clear()
    ledger.versions.clear()
    ledger.sessions.clear()
    ledger._session_minutes.clear()
    ledger.applied = {int(p): int(o) for p, o in raw["applied"].items()}
    for m, name, dim, value, n in raw["slices"]:
        ledger.slices.setdefault(m, defaultdict(int))[(name, dim, value)] = n
    for m, name, dim, value, members in raw["sets"]:
        ledger.sets.setdefault(m, defaultdict(set))[(name, dim, value)] = set(members)
    for name, dim, value, n in raw["totals"]:
        ledger.totals[(name, dim, value)] = n
    for kind, start, n in raw["late"]:
        ledger.late[Window(WindowKind(kind), start)] = n
    for m, n in raw["versions"]:
        ledger.versions[m] = n
    ledger.expired = raw["expired"]
    for session_id, state in raw["sessions"].items():
        ledger.sessions[session_id] = state
        ledger._session_minutes[minute_of(state[SESSION_LAST])].add(session_id)
    ledger.max_event_ms = raw["max_event_ms"]
    source_id: str | None = raw["source_id"]
    return source_id


class SnapshotReader:
    """Joins the parts of the first snapshot met, for a ledger that has folded nothing."""

    def __init__(self) -> None:
        self.loading: str | None = None
        self.parts: dict[int, bytes] = {}

    def offer(self, part: SnapshotPart) -> bytes | None:
        """Take a part; returns the whole snapshot once its last part is in."""
        if self.loading is None:
            if part.part != 0:
                return None
            self.loading = part.snapshot_id
        if part.snapshot_id != self.loading:
            return None
        self.parts[part.part] = part.body
        if len(self.parts) < part.parts:
            return None
        return b"".join(self.parts[n] for n in range(part.parts))
