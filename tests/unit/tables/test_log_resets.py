"""A repaired log reset is told once, and ``/health`` says degraded for a while after."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from tables.log_resets import DEGRADED_S, LogResets


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_repair_is_logged_as_a_warning_naming_partitions_and_offsets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resets = LogResets()
    with caplog.at_level(logging.WARNING, logger="tables.log_resets"):
        resets.record("unit-topic", {2: (41, 0), 0: (7, 3)}, "re-seeded")
    (line,) = caplog.messages
    assert "unit-topic partitions [0, 2]" in line
    assert "held offsets {0: 7, 2: 41}" in line
    assert "log ends at {0: 3, 2: 0}" in line


def test_a_repair_counts_each_partition_in_the_metric() -> None:
    def counted() -> float:
        value = REGISTRY.get_sample_value("ecap_log_resets_total", {"topic": "unit-metric"})
        return value or 0.0

    before = counted()
    LogResets().record("unit-metric", {0: (5, 0), 1: (6, 0)}, "re-seeded")
    assert counted() == before + 2


def test_health_is_degraded_until_a_while_after_the_last_repair() -> None:
    clock = Clock()
    resets = LogResets(clock)
    assert not resets.degraded()
    resets.record("unit-health", {0: (5, 0)}, "re-seeded")
    clock.now += DEGRADED_S - 1
    assert resets.degraded()
    clock.now += 2
    assert not resets.degraded()
    assert resets.details()["log_resets"]["partitions_repaired"] == 1
