"""The live KPIs as the API serves them: the ``analytics-results`` topic kept in memory.

A :class:`~ecap.kafka.broadcast.BroadcastReader` (no consumer group: every API process
reads every partition, from the beginning) feeds :meth:`LiveKpis.handle`, which keeps the
latest record per (metric, window kind, window start, dimension, value): the topic is
delivered at least once and a closed window is published again when late events change it,
and one metric's records are on one partition (key = metric), so the last one read wins.
Windows that ended more than :data:`KEEP` before the newest of their kind are dropped, so
memory holds about two hours of windows however long the topic is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import ConsumerRecord

from ecap.events import AnalyticsResult, EventError, WindowKind, decode

KEEP = timedelta(hours=2)
PRUNE_EVERY = 5000

Key = tuple[str, WindowKind, datetime, str, str]


@dataclass(frozen=True)
class Freshness:
    newest: datetime | None
    """``computed_at`` of the newest record the answer used."""
    age_seconds: float | None


def freshness(results: Iterable[AnalyticsResult], now: datetime | None = None) -> Freshness:
    newest = max((r.computed_at for r in results), default=None)
    if newest is None:
        return Freshness(None, None)
    return Freshness(newest, max(0.0, ((now or datetime.now(UTC)) - newest).total_seconds()))


class LiveKpis:
    """The latest value of every KPI window read from ``analytics-results``."""

    def __init__(self, keep: timedelta = KEEP) -> None:
        self.keep = keep
        self._results: dict[Key, AnalyticsResult] = {}
        self._newest_end: dict[WindowKind, datetime] = {}
        self._since_prune = 0
        self._newest: AnalyticsResult | None = None
        self.loaded = asyncio.Event()
        """Set once the records that were on the topic when the reader started are in: the
        reader's ``caught_up``."""
        self.rejected = 0
        """Records that were not valid ``AnalyticsResult`` events (skipped, counted)."""

    def __len__(self) -> int:
        """Records kept."""
        return len(self._results)

    @property
    def caught_up(self) -> bool:
        return self.loaded.is_set()

    def handle(self, record: ConsumerRecord[bytes, bytes], caught_up: bool) -> None:
        if record.value is None:
            return
        try:
            result = decode(AnalyticsResult, record.value)
        except EventError:
            self.rejected += 1
            return
        self.add(result)

    def add(self, result: AnalyticsResult) -> None:
        key = (
            result.metric,
            result.window,
            result.window_start,
            result.dimension,
            result.dimension_value,
        )
        self._results[key] = result
        if self._newest is None or result.computed_at > self._newest.computed_at:
            self._newest = result
        newest = self._newest_end.get(result.window)
        if newest is None or result.window_end > newest:
            self._newest_end[result.window] = result.window_end
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self._prune()

    def _prune(self) -> None:
        self._since_prune = 0
        self._results = {
            key: result
            for key, result in self._results.items()
            if result.window_end >= self._newest_end[result.window] - self.keep
        }

    def series(
        self, metric: str, window: WindowKind, dimension: str, value: str | None = None
    ) -> list[AnalyticsResult]:
        """The kept windows of one metric and dimension (every value, or one), oldest
        first; windows older than the keep time behind the newest are left out."""
        cutoff = self._newest_end.get(window, datetime.max.replace(tzinfo=UTC)) - self.keep
        found = [
            result
            for (m, w, _, d, v), result in list(self._results.items())
            if m == metric
            and w == window
            and d == dimension
            and (value is None or v == value)
            and result.window_end >= cutoff
        ]
        return sorted(found, key=lambda r: (r.window_start, r.dimension_value))

    def latest(
        self, window: WindowKind, metrics: Iterable[str] | None = None, dimension: str = "all"
    ) -> list[AnalyticsResult]:
        """For each metric (all when None) with records of ``window`` and ``dimension``,
        the records of its latest window."""
        newest: dict[str, datetime] = {}
        chosen = None if metrics is None else set(metrics)
        entries = list(self._results.items())
        for (m, w, start, d, _), _result in entries:
            wanted = w == window and d == dimension and (chosen is None or m in chosen)
            if wanted and (m not in newest or start > newest[m]):
                newest[m] = start
        return sorted(
            (
                result
                for (m, w, start, d, _), result in entries
                if w == window and d == dimension and newest.get(m) == start
            ),
            key=lambda r: (r.metric, r.dimension_value),
        )

    def newest(self) -> list[AnalyticsResult]:
        """The record computed last, if any."""
        return [self._newest] if self._newest else []
