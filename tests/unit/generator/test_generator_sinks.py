"""Pacing by the wall clock, the labels file and the history file formats."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from ecap.generator.sinks import LabelsFile, Pacer, SinkError, write_table


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_holds_a_record_until_its_simulated_time_is_due() -> None:
    clock = FakeClock(100.0)
    pacer = Pacer(start_ms=5_000, time_scale=1.0, clock=clock, sleep=clock.sleep)
    pacer.wait(5_000)  # the first record goes at once and anchors the clock
    pacer.wait(6_500)
    assert clock.slept == [pytest.approx(1.5)]


def test_an_accelerated_clock_sends_a_simulated_minute_per_second() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer(start_ms=0, time_scale=60.0, clock=clock, sleep=clock.sleep)
    pacer.wait(0)
    pacer.wait(60_000)
    assert clock.slept == [pytest.approx(1.0)]


def test_a_late_record_is_not_held() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer(start_ms=0, time_scale=1.0, clock=clock, sleep=clock.sleep)
    pacer.wait(0)
    clock.now = 10.0
    pacer.wait(2_000)
    assert clock.slept == []


def test_in_real_time_a_record_is_due_at_its_event_time() -> None:
    clock = FakeClock(1_000.0)
    pacer = Pacer(
        start_ms=1_000_000, time_scale=1.0, real_time=True, clock=clock, sleep=clock.sleep
    )
    pacer.wait(1_000_250)
    assert clock.slept == [pytest.approx(0.25)]


def test_the_labels_file_has_one_json_line_per_label(tmp_path) -> None:
    labels = LabelsFile(tmp_path / "deep" / "labels.jsonl")
    labels.write(b'{"transaction_id":"tx-1"}')
    labels.write(b'{"transaction_id":"tx-2"}')
    labels.close()
    lines = (tmp_path / "deep" / "labels.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["transaction_id"] for line in lines] == ["tx-1", "tx-2"]


def test_an_unknown_history_format_is_refused(tmp_path) -> None:
    with pytest.raises(SinkError, match=r"\.parquet or \.csv"):
        write_table(pa.table({"a": [1]}), tmp_path / "orders.xlsx")
