"""Drives a generator into a sink: pacing, labels, progress callbacks and the final report.

The CLI and the benchmark both run through here, so what is measured is what users run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ecap import topics
from ecap.generator.sinks import Delivery, LabelsFile, Pacer
from ecap.generator.stream import Stream
from ecap.generator.wire import Record

Progress = Callable[[int, int], None]
"""Called now and then with (records sent, simulated milliseconds done)."""

PROGRESS_EVERY = 2000


class RecordSink(Protocol):
    def send(self, record: Record) -> None: ...

    def close(self) -> Delivery: ...


class CountingSink:
    """Counts records without sending them anywhere: generation-only runs."""

    def __init__(self) -> None:
        self.delivery = Delivery()

    def send(self, record: Record) -> None:
        self.delivery.delivered[record.topic] += 1

    def close(self) -> Delivery:
        return self.delivery


@dataclass
class RunReport:
    """What a run generated and what the sink acknowledged."""

    generated: Counter[str] = field(default_factory=Counter)
    delivery: Delivery = field(default_factory=Delivery)
    fraud: Counter[str] = field(default_factory=Counter)
    labels_written: int = 0
    elapsed: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.generated.values())

    @property
    def rate(self) -> float:
        return self.total / self.elapsed if self.elapsed > 0 else 0.0


def run_stream(
    stream: Stream,
    sink: RecordSink,
    *,
    labels: LabelsFile | None = None,
    pace: bool = True,
    real_time: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Send every record of ``stream`` to ``sink``, no faster than its simulated clock
    maps to the wall clock (unless ``pace`` is off), and report. ``real_time`` says the
    simulated start is the real start instant (see :class:`Pacer`)."""
    report = RunReport()
    pacer = Pacer(stream.start_ms, stream.config.time_scale, real_time=real_time)
    generated = report.generated
    send = sink.send
    try:
        for count, record in enumerate(stream.records(), start=1):
            if pace:
                pacer.wait(record.timestamp_ms)
            send(record)
            generated[record.topic] += 1
            if labels is not None and record.topic == topics.FRAUD_LABELS:
                labels.write(record.value)
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count, record.timestamp_ms - stream.start_ms)
    finally:
        # A sink that gave up (its broker went away: ``sinks.BrokerGone``) still leaves a
        # whole labels file for the records generated so far.
        if labels is not None:
            labels.close()
    report.delivery = sink.close()
    report.elapsed = pacer.elapsed()
    report.fraud = Counter(stream.world.tally.fraud_per_scenario)
    if labels is not None:
        report.labels_written = labels.count
    if progress is not None:
        progress(report.total, stream.end_ms - stream.start_ms)
    return report


def run_records(
    records: Iterable[Record], sink: RecordSink, *, progress: Progress | None = None
) -> RunReport:
    """Send records as fast as the sink takes them (the order-history path)."""
    report = RunReport()
    started = time.monotonic()
    generated = report.generated
    for count, record in enumerate(records, start=1):
        sink.send(record)
        generated[record.topic] += 1
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count, record.timestamp_ms)
    report.delivery = sink.close()
    report.elapsed = time.monotonic() - started
    return report
