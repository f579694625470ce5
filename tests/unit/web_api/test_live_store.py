"""The live-KPI store of the API (``web.api.live.LiveKpis``), without Kafka: the latest
record per window wins, and windows far behind the newest are dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecap.events import AnalyticsResult, WindowKind
from web.api import live
from web.api.live import LiveKpis

T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def result(minute: int, value: float, *, metric: str = "orders") -> AnalyticsResult:
    start = T0 + minute * MINUTE
    return AnalyticsResult(
        metric=metric,
        window=WindowKind.TUMBLING_1M,
        window_start=start,
        window_end=start + MINUTE,
        value=value,
        final=True,
        computed_at=start + MINUTE,
    )


def test_a_window_published_again_keeps_its_latest_value() -> None:
    kpis = LiveKpis()
    kpis.add(result(0, 3))
    kpis.add(result(0, 5))
    assert [r.value for r in kpis.series("orders", WindowKind.TUMBLING_1M, "all")] == [5]


def test_latest_is_each_metrics_newest_window() -> None:
    kpis = LiveKpis()
    for minute, metric in ((0, "orders"), (2, "orders"), (1, "revenue")):
        kpis.add(result(minute, minute, metric=metric))
    latest = kpis.latest(WindowKind.TUMBLING_1M)
    assert [(r.metric, r.window_start) for r in latest] == [
        ("orders", T0 + 2 * MINUTE),
        ("revenue", T0 + MINUTE),
    ]


def test_windows_older_than_the_keep_time_behind_the_newest_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "PRUNE_EVERY", 1)
    kpis = LiveKpis(keep=timedelta(minutes=10))
    for minute in range(30):
        kpis.add(result(minute, minute))
    kept = kpis.series("orders", WindowKind.TUMBLING_1M, "all")
    assert [r.value for r in kept] == list(range(19, 30))
    assert len(kpis) == 11


def test_freshness_is_the_age_of_the_newest_record() -> None:
    found = live.freshness([result(0, 1), result(5, 1)], now=T0 + 10 * MINUTE)
    assert (found.newest, found.age_seconds) == (T0 + 6 * MINUTE, 240.0)
