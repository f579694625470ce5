"""What a worker found reset under it, told loudly: the log, ``/health`` and the metrics.

A partition's log is *reset* when it ends below the offset the worker had persisted or
applied for it, or when its topic is gone or came back under a new topic id: an embedded
broker restarted (it keeps its log in memory), a topic deleted and created again, or
retention that removed records never read. Offsets the worker kept then point into a log
that no longer exists. The worker keeps its state and repairs the log instead:

* ``tables.changelog_reset``: a table's changelog is re-seeded from RocksDB, and the
  offset Faust's recovery starts from is moved onto the new log;
* ``tables.kpi_ledger_topic``: the KPI ledger's applied offsets are rebased onto the new
  input log, and an emptied ledger topic is re-seeded with a snapshot of the ledger.

Each repair is recorded here once (:meth:`LogResets.record`): a WARNING line naming the
partitions with the offset held and the new end, ``ecap_log_resets_total{topic}`` counted
per partition, and an entry in ``/health``'s details. The worker reports ``degraded`` from
the first reset until :data:`DEGRADED_S` after the last: its state is whole, but records
written to the old log that it had not read yet are gone, and only their producer can send
them again (docs/operations.md, "After a broker restart or a recreated topic").
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecap import metrics

logger = logging.getLogger(__name__)

DEGRADED_S = 600.0
"""How long ``/health`` says ``degraded`` after the last repair: long enough for a probe or
a scrape to see it, short enough that a worker that has run well since stops saying so."""
KEPT = 20
"""Latest repairs listed in ``/health``."""


@dataclass(frozen=True)
class Reset:
    """One repair: which partitions of ``topic``, what the worker held and what it found."""

    topic: str
    partitions: Mapping[int, tuple[int | None, int]]
    """Partition -> (offset the worker held, or None; end offset of the log found)."""
    action: str
    """What the worker did about it, in a few words."""
    at: float
    """Wall-clock time of the repair."""

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partitions": {
                str(p): {"held": held, "log_end": end}
                for p, (held, end) in sorted(self.partitions.items())
            },
            "action": self.action,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
        }


class LogResets:
    """The resets one worker process repaired (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.repairs: deque[Reset] = deque(maxlen=KEPT)
        self.total = 0
        """Partitions repaired since the worker started."""

    def record(
        self, topic: str, partitions: Mapping[int, tuple[int | None, int]], action: str
    ) -> None:
        """Say that ``partitions`` of ``topic`` were found reset and what was done."""
        if not partitions:
            return
        reset = Reset(topic, dict(partitions), action, self.clock())
        self.repairs.append(reset)
        self.total += len(partitions)
        metrics.LOG_RESETS.labels(topic).inc(len(partitions))
        logger.warning(
            "log reset: %s partitions %s held offsets %s but the log ends at %s (the broker "
            "lost its log or the topic was recreated); %s. Records written to the old log "
            "and not read yet are lost: send them again (docs/operations.md, 'After a broker "
            "restart or a recreated topic')",
            topic,
            sorted(partitions),
            {p: held for p, (held, _) in sorted(partitions.items())},
            {p: end for p, (_, end) in sorted(partitions.items())},
            action,
        )

    def degraded(self) -> bool:
        """True until :data:`DEGRADED_S` after the last repair."""
        return bool(self.repairs) and self.clock() - self.repairs[-1].at < DEGRADED_S

    def details(self) -> dict[str, Any]:
        """The ``log_resets`` entry of ``/health``'s details."""
        return {
            "log_resets": {
                "partitions_repaired": self.total,
                "degraded": self.degraded(),
                "latest": [reset.to_json() for reset in self.repairs],
            }
        }
