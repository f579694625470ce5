"""Windows built from minute slices, and the watermark that closes them."""

from __future__ import annotations

from ecap.events import WindowKind
from ecap.kpis.windows import (
    GRACE_MS,
    HOUR_MS,
    IDLE_MS,
    MINUTE_MS,
    Watermark,
    Window,
    hopping,
    minute_of,
    sliding,
    tumbling,
)
from tests.unit.kpis.conftest import T0_MS

MINUTE = minute_of(T0_MS) + 7  # 12:07


def test_a_minute_lies_in_twelve_hopping_hours_each_holding_it() -> None:
    windows = hopping(MINUTE)
    assert len(windows) == 12
    assert all(MINUTE in w.minutes() and w.end_ms - w.start_ms == HOUR_MS for w in windows)
    assert windows[-1].start_ms == T0_MS + 5 * MINUTE_MS  # 12:05, the latest start


def test_a_minute_lies_in_five_sliding_windows_ending_at_minute_boundaries() -> None:
    ends = [w.end_ms for w in sliding(MINUTE)]
    assert ends == [T0_MS + (8 + i) * MINUTE_MS for i in range(5)]


def test_a_window_closes_a_grace_period_after_its_end() -> None:
    assert tumbling(MINUTE).closes_at == T0_MS + 8 * MINUTE_MS + GRACE_MS
    assert Window(WindowKind.SLIDING_5M, T0_MS).end_ms == T0_MS + 5 * MINUTE_MS


def test_the_watermark_is_unknown_until_every_partition_reported() -> None:
    clock = Watermark(2)
    clock.observe_records(0, T0_MS, arrived_ms=1000)
    assert clock.advance(now_ms=1000) is None


def test_the_watermark_is_the_slowest_receiving_partition() -> None:
    clock = Watermark(2)
    clock.observe_records(0, T0_MS + 50_000, arrived_ms=1000)
    clock.observe_records(1, T0_MS + 20_000, arrived_ms=1000)
    assert clock.advance(now_ms=1500) == T0_MS + 20_000


def test_a_quiet_caught_up_partition_does_not_hold_the_watermark() -> None:
    clock = Watermark(2)
    clock.observe_records(0, T0_MS + 50_000, arrived_ms=10_000)
    clock.observe_records(1, T0_MS + 20_000, arrived_ms=1000)
    clock.observe_heartbeat(1, caught_up=True, arrived_ms=None)
    assert clock.advance(now_ms=1000 + IDLE_MS) == T0_MS + 50_000


def test_a_lagging_partition_holds_the_watermark_however_long_it_is_quiet() -> None:
    clock = Watermark(2)
    clock.observe_records(0, T0_MS + 50_000, arrived_ms=100_000)
    clock.observe_records(1, T0_MS + 20_000, arrived_ms=1000)
    clock.observe_heartbeat(1, caught_up=False, arrived_ms=None)
    assert clock.advance(now_ms=100_000) == T0_MS + 20_000


def test_when_every_partition_is_quiet_event_time_follows_the_wall_clock() -> None:
    clock = Watermark(1)
    clock.observe_records(0, T0_MS, arrived_ms=1000)
    clock.observe_heartbeat(0, caught_up=True, arrived_ms=1000)
    assert clock.advance(now_ms=1000 + IDLE_MS + 7000) == T0_MS + IDLE_MS + 7000


def test_the_watermark_never_goes_back_when_a_quiet_partition_wakes_up() -> None:
    clock = Watermark(2)
    clock.observe_records(0, T0_MS + 60_000, arrived_ms=10_000)
    clock.observe_records(1, T0_MS + 10_000, arrived_ms=1000)
    clock.observe_heartbeat(1, caught_up=True, arrived_ms=None)
    assert clock.advance(now_ms=10_000) == T0_MS + 60_000
    clock.observe_records(1, T0_MS + 20_000, arrived_ms=10_500)
    assert clock.advance(now_ms=10_500) == T0_MS + 60_000
