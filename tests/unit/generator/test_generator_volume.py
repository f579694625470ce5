"""How many records a run sends, and how the volume follows the clock of the shop."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ecap.generator.stream import Stream, StreamConfig


def test_rate_times_duration_is_about_the_number_of_records() -> None:
    config = StreamConfig(rate=2000, duration=30, seed=1)
    count = sum(1 for _ in Stream(config).records())
    assert count == pytest.approx(60_000, rel=0.05)


def test_the_first_and_the_last_seconds_carry_the_same_volume() -> None:
    stream = Stream(StreamConfig(rate=2000, duration=20, seed=2))
    per_second = Counter((r.timestamp_ms - stream.start_ms) // 1000 for r in stream.records())
    early = np.mean([per_second[s] for s in range(3, 8)])
    late = np.mean([per_second[s] for s in range(14, 19)])
    assert early == pytest.approx(late, rel=0.08)
    assert early == pytest.approx(2000, rel=0.08)


def test_volume_follows_the_time_of_day_over_an_accelerated_day() -> None:
    """A simulated day in 86 wall seconds (x1000): busy evenings, quiet nights."""
    stream = Stream(StreamConfig(rate=300, duration=86.4, seed=3, time_scale=1000))
    per_hour = Counter(
        (r.timestamp_ms - stream.start_ms) // 3_600_000
        for r in stream.records()
        if r.topic == "user-events"
    )
    counts = np.array([per_hour[h] for h in range(24)], dtype=float)
    expected = np.array(
        [stream.volume_ratio(stream.start_ms + h * 3_600_000 + 1_800_000) for h in range(24)]
    )
    assert counts.max() > 1.5 * counts.min()
    assert np.corrcoef(counts, expected)[0, 1] > 0.9


def test_events_never_go_back_in_time() -> None:
    stamps = [r.timestamp_ms for r in Stream(StreamConfig(rate=500, duration=10, seed=4)).records()]
    assert stamps == sorted(stamps)
