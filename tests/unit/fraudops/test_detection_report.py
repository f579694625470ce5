"""``ecap evaluate fraud``'s latency line: a hint when the event times were simulated in
the past (a seeded stream starts at a fixed time unless ``--start now``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecap.fraud.quality import AlertRecord, LabelRecord
from ecap.fraudops.detection_report import Inputs, evaluate, latency_line

T = datetime(2026, 11, 27, 8, tzinfo=UTC)


def _line(delay: timedelta) -> str:
    inputs = Inputs(
        alerts=[AlertRecord("t1", 0.9, T, T + delay)],
        labels=[LabelRecord("t1", "odd_hours")],
        transaction_ids=["t1", "t2"],
    )
    return latency_line(evaluate(inputs))


def test_a_live_stream_gets_the_percentiles_alone() -> None:
    assert _line(timedelta(milliseconds=120)) == (
        "latency, event time to detection: p50 120 ms, p95 120 ms, p99 120 ms "
        "over 1 alerts (per scenario in --json)"
    )


def test_event_times_hours_in_the_past_get_a_hint_to_use_start_now() -> None:
    line = _line(timedelta(hours=4))
    assert line.startswith("latency, event time to detection: p50 14,400,000 ms")
    assert "--start now" in line.splitlines()[1]
