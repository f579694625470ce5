"""Benchmark of the transactions worker: sustained throughput, alert latency, and the baseline.

Everything runs on fresh embedded brokers (Tansu, memory storage) started here, with one
worker process started as ``make demo`` starts it (``ecap worker transactions``: the fraud
agent with the sales KPIs following it) and, for comparison, a process with the fraud agent
only.

1. **throughput** (per worker variant, each on its own fresh broker): ``--records``
   generated transactions are loaded first, then one worker drains them. The rate is taken
   between 10% and 90% of the backlog from the offsets ``/fraud/detector/`` reports
   (start-up, group join and the tail excluded). A worker that drains a backlog at R
   keeps the lag bounded at any input rate below R.
2. **baseline**, on the same broker and backlog right before step 1:
   ``bench/_passthrough.py``, a plain aiokafka consume → ``orjson.loads`` →
   ``orjson.dumps`` → produce loop. The share is given two ways: rate over rate (both at
   the mercy of what else runs on the machine) and the baseline's CPU time per record over
   the worker's (less sensitive to machine load).
3. **latency**: the shipped worker runs while transactions are sent at ``--rate`` (1,000/s)
   for ``--duration`` seconds. The stream is pinned to a fixed day and time of day
   (``--hours``, UTC): each record's ``event_time`` and Kafka timestamp are that instant
   plus the time since the run began, so the rules that depend on the hour (``odd_hours``)
   fire the same way whenever the benchmark runs. By default it runs twice: at 08:00 UTC
   (almost no alerts) and at 02:00 UTC (about a third of the transactions alert, above
   the 30% the target must hold at); every figure is given with the alert rate it was
   measured at. Latency is the time a consumer of ``fraud-alerts`` receives the alert
   minus the instant its transaction was handed to the producer, so it includes the
   producer's linger (``--linger-ms``, 5 ms, as a shop's producer batches; ECAP's
   generator lingers 20 ms), the alert's produce and the consumer's fetch. The alert
   record's own timestamp (set when the worker sends it) is reported beside it. At
   linger 0 every record is a record batch of its own, and Tansu's in-memory store slows
   with the number of batches it holds: a plain consumer's p99 per 2-second slice went
   from 24 to 241 ms over 40 s at linger 0, from 17 to 50 ms at linger 5 (no worker
   running). The consumer is aiokafka with the embedded-broker workarounds, as ECAP's
   alerts sink reads (a librdkafka consumer alone took 35-45 ms p50 per hop on Tansu).
   It also reads one partition of the transactions: their latency is **one hop** through
   the same broker under the same load, the floor of the alert's two hops (one partition
   only: each Fetch costs Tansu more as the log grows, and reading all six took the
   worker's own p99 from about 0.25 to 4.5 s). The worker's lag is sampled every second.
   The first :data:`WARM_UP_S` seconds are not measured. Before each latency run the
   passthrough baseline is measured on the same broker, so each latency figure comes
   with the speed of the machine it was taken on.
4. **throttled** (``--throttle N``): the stress-hour latency run again with ``N`` CPU
   burners (busy loops at the same priority) beside the broker, the worker and the
   passthrough, standing in for a slower machine. The passthrough it leaves is measured
   first under the same burners and reported as a share of the unthrottled one; on this
   project's two-core machines two burners halve it.

Prints a table and writes ``bench/results/stream_fraud.json``. Not a test: it asserts nothing.

    .venv/bin/python bench/stream_fraud.py [--records 100000] [--rate 1000] [--duration 60]
        [--hours 8 2] [--throttle 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents import transactions as fraud_agent
from bench._machine import write_result
from bench._passthrough import passthrough
from ecap import auth, faust_app, workers_launcher
from ecap.embedded import broker as broker_server
from ecap.embedded.process import free_port
from ecap.generator.stream import Stream, StreamConfig
from ecap.kafka import admin
from ecap.patches import aiokafka_tansu
from ecap.settings import Settings
from ecap.topics import FRAUD_ALERTS, TRANSACTIONS

SEED = 1
PASSTHROUGH_SINK = "bench-passthrough"
WARM_UP_S = 5.0
"""The first seconds of the paced run are sent but not measured (the worker's first
batches load every partition's detector)."""
TARGET_P99_MS = 100.0
TARGET_MAX_ALERT_RATE = 0.30
"""The latency target must hold at alert rates up to this share of the transactions."""
PINNED_DAY = (2026, 6, 16)
"""The (arbitrary, fixed) day the paced stream is stamped on; the hour comes from --hours."""
PASSTHROUGH_SOURCE = "bench-passthrough-source"
PASSTHROUGH_RECORDS = 60_000
TARGET_TX_PER_S = 8_000
TARGET_SHARE = 0.12
console = Console()


def load() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------- data


def base_transactions() -> list[tuple[bytes, bytes]]:
    """About 8,000 generated transactions of 20,000 customers (key, value), fixed seed."""
    config = StreamConfig(rate=20_000, duration=15, seed=SEED, customers=20_000)
    return [(r.key, r.value) for r in Stream(config).records() if r.topic == TRANSACTIONS]


def backlog(base: list[tuple[bytes, bytes]], records: int) -> list[tuple[bytes, bytes]]:
    """``records`` transactions: copies of the base set, each copy with its own customers
    and transaction ids (so every copy is new traffic to the detector)."""
    out: list[tuple[bytes, bytes]] = []
    copy = 0
    while len(out) < records:
        for key, value in base:
            user = key.decode()
            text = value.decode().replace(user, f"{user}x{copy}").replace('"tx-', f'"tx{copy}-')
            out.append((f"{user}x{copy}".encode(), text.encode()))
            if len(out) == records:
                break
        copy += 1
    return out


def send(bootstrap: str, records: list[tuple[bytes, bytes]], topic: str = TRANSACTIONS) -> None:
    producer = Producer(
        {
            "log_level": 2,
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "compression.type": "lz4",
            "partitioner": "murmur2_random",
        }
    )
    for index, (key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value)
        if index % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


# ---------------------------------------------------------------------- broker and workers


@contextmanager
def stack(workdir: Path) -> Iterator[tuple[Settings, str]]:
    """A fresh broker with the catalog topics, and settings pointing at it."""
    home = Path(tempfile.mkdtemp(prefix="stack-", dir=workdir))
    entry = broker_server.start("127.0.0.1", free_port(), home)
    bootstrap = str(entry["address"])
    (home / "stack.json").write_text(json.dumps({"kafka": entry}))
    client = admin.admin_client(bootstrap)
    admin.create_topics(client, replication=1)
    from confluent_kafka.admin import NewTopic

    new = [NewTopic(PASSTHROUGH_SINK, 6, 1), NewTopic(PASSTHROUGH_SOURCE, 6, 1)]
    for future in client.create_topics(new).values():
        future.result(timeout=10)
    try:
        yield Settings(home=home, kafka_bootstrap=None), bootstrap
    finally:
        workers_launcher.stop(Settings(home=home, kafka_bootstrap=None))
        broker_server.stop(entry)


FRAUD_ONLY = """
import sys
from ecap import faust_app, workers
spec = workers.worker_spec("transactions", 0, int(sys.argv[1]))
app = faust_app.create_app(spec)
faust_app.build(app, spec, sales=False)
sys.argv = sys.argv[:1]
faust_app.run(app)
"""


class Worker:
    """A transactions worker process: as shipped (``ecap worker``) or fraud agent only."""

    def __init__(self, settings: Settings, *, fraud_only: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = auth.header(settings)  # the token of settings.home, as the worker's
        env = {"ECAP_KAFKA_BOOTSTRAP": "", "ECAP_HOME": str(settings.home)}
        if fraud_only:
            self.log = settings.home / "worker-fraud-only.log"
            with self.log.open("wb") as log:
                self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                    [sys.executable, "-c", FRAUD_ONLY, str(self.port)],
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=Path(__file__).resolve().parent.parent,
                )
            self.pid = self.proc.pid
        else:
            self.proc = None
            started = workers_launcher.start(
                "transactions", 0, web_port=self.port, settings=settings, env=env
            )
            self.pid, self.log = started.pid, started.log
        self.process = psutil.Process(self.pid)

    def view(self) -> dict[str, Any]:
        request = urllib.request.Request(self.url + "/fraud/detector/", headers=self.headers)
        with urllib.request.urlopen(request, timeout=10) as answer:
            data: dict[str, Any] = json.loads(answer.read())
            return data

    def processed(self) -> int:
        try:
            return sum(offset + 1 for offset in self.view()["processed"].values())
        except OSError:
            return 0

    def wait_assigned(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.is_running() or self.process.status() == psutil.STATUS_ZOMBIE:
                raise SystemExit(f"the worker died; see {self.log}")
            try:
                view = self.view()
                if len(view["held_partitions"]) == 6 and view["control_caught_up"]:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the worker was not assigned in {timeout} s; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)


# ---------------------------------------------------------------------- measurements


def drain(settings: Settings, records: int, *, fraud_only: bool) -> dict[str, Any]:
    """Start a worker on the loaded backlog and time it between 10% and 90%."""
    load_before = load()
    worker = Worker(settings, fraud_only=fraud_only)
    try:
        low, high = records * 0.1, records * 0.9
        marks: dict[str, tuple[float, int, float]] = {}
        deadline = time.monotonic() + 600
        while "high" not in marks:
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker did not drain the backlog; see {worker.log}")
            done = worker.processed()
            now = time.monotonic()
            cpu = sum(worker.process.cpu_times()[:2])
            if "low" not in marks and done >= low:
                marks["low"] = (now, done, cpu)
            elif "low" in marks and done >= high:
                marks["high"] = (now, done, cpu)
            time.sleep(0.1)
        (t0, n0, c0), (t1, n1, c1) = marks["low"], marks["high"]
        return {
            "variant": "fraud agent only"
            if fraud_only
            else "ecap worker transactions (as shipped)",
            "records": records,
            "tx_per_s": round((n1 - n0) / (t1 - t0)),
            "worker_cpu_share": round((c1 - c0) / (t1 - t0), 2),
            "cpu_us_per_tx": round((c1 - c0) / (n1 - n0) * 1e6, 1),
            "load_average_1m": [load_before, load()],
        }
    finally:
        worker.stop()


def restamp(value: bytes, at: datetime) -> bytes:
    record = orjson.loads(value)
    record["event_time"] = at.isoformat().replace("+00:00", "Z")
    return orjson.dumps(record)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency(
    settings: Settings,
    bootstrap: str,
    records: list[tuple[bytes, bytes]],
    rate: float,
    seconds: float,
    hour: int,
    linger_ms: int = 5,
) -> dict[str, Any]:
    """Paced run of the shipped worker at ``rate`` tx/s, the stream pinned to ``hour``
    (UTC) of :data:`PINNED_DAY`: alert latency, alert rate and lag."""
    load_before = load()
    worker = Worker(settings, fraud_only=False)
    pinned = datetime(*PINNED_DAY, hour, tzinfo=UTC)
    received: dict[str, tuple[float, float, float]] = {}
    stop = threading.Event()

    hops: list[float] = []

    async def read(ready: threading.Event) -> None:
        # aiokafka with the embedded-broker workarounds, as ECAP's own alerts sink reads.
        # It reads one partition of the transactions too: their latency is one hop through
        # the same broker under the same load, the floor of the alerts' two hops.
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        consumer.assign(
            [TopicPartition(FRAUD_ALERTS, p) for p in range(2)] + [TopicPartition(TRANSACTIONS, 0)]
        )
        await consumer.seek_to_beginning()
        ready.set()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=50, max_records=2000)
                arrived = time.time()
                for tp, messages in batch.items():
                    for message in messages:
                        record = orjson.loads(message.value or b"{}")
                        event = datetime.fromisoformat(record["event_time"]).timestamp()
                        if tp.topic == TRANSACTIONS:
                            hops.append((event, arrived))
                            continue
                        created = message.timestamp / 1000
                        received.setdefault(record["transaction_id"], (event, created, arrived))
        finally:
            await consumer.stop()

    def read_alerts(ready: threading.Event) -> None:
        aiokafka_tansu.install()
        try:
            asyncio.run(read(ready))
        finally:
            aiokafka_tansu.uninstall()

    lags: list[int] = []
    try:
        worker.wait_assigned()
        ready = threading.Event()
        reader = threading.Thread(target=read_alerts, args=(ready,), daemon=True)
        reader.start()
        ready.wait(30)
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": linger_ms,
                "partitioner": "murmur2_random",
                "log_level": 2,
            }
        )
        total = int(rate * seconds)
        start = time.monotonic()
        wall_start = time.time()
        next_lag_sample = start
        for index, (key, value) in enumerate(records[:total]):
            due = start + index / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            at = pinned + timedelta(seconds=time.time() - wall_start)
            stamp = int(at.timestamp() * 1000)
            producer.produce(TRANSACTIONS, key=key, value=restamp(value, at), timestamp=stamp)
            producer.poll(0)
            if time.monotonic() >= next_lag_sample and index >= rate * WARM_UP_S:
                lags.append(index + 1 - worker.processed())
                next_lag_sample += 1.0
        producer.flush(30)
        sent_for = time.monotonic() - start
        time.sleep(3.0)
        final_lag = total - worker.processed()
    finally:
        stop.set()
        worker.stop()
    # An alert's transaction was handed to the producer at wall_start + (event - pinned).
    offset = wall_start - pinned.timestamp()
    measured = [
        (event + offset, created, arrived)
        for event, created, arrived in received.values()
        if event - pinned.timestamp() >= WARM_UP_S
    ]
    on_arrival = [(arrived - sent) * 1000 for sent, _, arrived in measured]
    one_hop = [
        (arrived - (event + offset)) * 1000
        for event, arrived in hops
        if event - pinned.timestamp() >= WARM_UP_S
    ]
    on_create = [(created - sent) * 1000 for sent, created, _ in measured]
    measured_tx = total - int(rate * WARM_UP_S)

    def summary(values: list[float]) -> dict[str, float]:
        return {f"p{q}": round(percentile(values, q / 100), 1) for q in (50, 95, 99)} | {
            "max": round(max(values), 1)
        }

    return {
        "rate_tx_per_s": rate,
        "seconds": seconds,
        "producer_linger_ms": linger_ms,
        "stream_pinned_to": pinned.isoformat(),
        "sent_at_tx_per_s": round(total / sent_for),
        "transactions_measured": measured_tx,
        "alerts": len(measured),
        "alert_rate": round(len(measured) / measured_tx, 3),
        "warm_up_s_excluded": WARM_UP_S,
        "event_to_alert_received_ms": summary(on_arrival) if on_arrival else {},
        "event_to_alert_created_ms": summary(on_create) if on_create else {},
        "broker_one_hop_ms": summary(one_hop) if one_hop else {},
        "lag_samples_max": max(lags) if lags else None,
        "lag_after_3s": final_lag,
        "load_average_1m": [load_before, load()],
    }


def burn() -> None:
    """A CPU burner: a busy loop until terminated."""
    while True:
        pass


@contextmanager
def burners(count: int) -> Iterator[None]:
    """``count`` busy loops beside everything else, standing in for a slower machine."""
    procs = [multiprocessing.Process(target=burn, daemon=True) for _ in range(count)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(10)


def paced_run(
    workdir: Path,
    base: list[tuple[bytes, bytes]],
    args: argparse.Namespace,
    hour: int,
    throttle: int,
) -> dict[str, Any]:
    """One latency run on a fresh broker, with the passthrough baseline measured on it
    first (under the same burners)."""
    with stack(workdir) as (settings, bootstrap):
        send(bootstrap, backlog(base, PASSTHROUGH_RECORDS), PASSTHROUGH_SOURCE)
        paced = backlog(base, int(args.rate * args.duration))
        with burners(throttle):
            console.print(
                f"latency at {args.rate:,.0f} tx/s for {args.duration:.0f} s, stream at "
                f"{hour:02d}:00 UTC" + (f", {throttle} CPU burners beside" if throttle else "")
            )
            rate, _ = asyncio.run(
                passthrough(bootstrap, PASSTHROUGH_SOURCE, PASSTHROUGH_SINK, PASSTHROUGH_RECORDS)
            )
            result = latency(
                settings, bootstrap, paced, args.rate, args.duration, hour, args.linger_ms
            )
    result["cpu_burners"] = throttle
    result["passthrough_tx_per_s"] = round(rate)
    return result


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument(
        "--hours",
        type=int,
        nargs="+",
        default=[8, 2],
        help="UTC hours of the day the paced stream is pinned to, one latency run each",
    )
    parser.add_argument(
        "--linger-ms",
        type=int,
        default=5,
        help="linger of the paced stream's producer (counted in the latency)",
    )
    parser.add_argument(
        "--throttle",
        type=int,
        default=0,
        metavar="BURNERS",
        help="repeat the last hour's latency run with this many CPU burners beside",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-fraud-"))
    console.print(f"load average {load()}; generating transactions")
    base = base_transactions()
    data = backlog(base, args.records)
    figures: dict[str, Any] = {"throughput": [], "baseline": [], "latency": []}
    for fraud_only in (False, True):
        with stack(workdir) as (settings, bootstrap):
            send(bootstrap, data)
            console.print(f"baseline passthrough on a fresh broker ({len(data):,} records)")
            rate, cpu_us = asyncio.run(
                passthrough(bootstrap, TRANSACTIONS, PASSTHROUGH_SINK, len(data))
            )
            figures["baseline"].append(
                {
                    "tx_per_s": round(rate),
                    "cpu_us_per_record": round(cpu_us, 1),
                    "load_average_1m": load(),
                }
            )
            variant = "the fraud agent only" if fraud_only else "ecap worker transactions"
            console.print(f"draining with {variant}")
            result = drain(settings, len(data), fraud_only=fraud_only)
            result["share_of_baseline"] = round(result["tx_per_s"] / rate, 3)
            result["cpu_share_of_baseline"] = round(cpu_us / result["cpu_us_per_tx"], 3)
            figures["throughput"].append(result)
    runs = [(hour, 0) for hour in args.hours]
    if args.throttle:
        runs.append((args.hours[-1], args.throttle))
    for hour, throttle in runs:
        figures["latency"].append(paced_run(workdir, base, args, hour, throttle))
    unthrottled = [run for run in figures["latency"] if not run["cpu_burners"]]
    for run in figures["latency"]:
        if run["cpu_burners"]:
            reference = min(other["passthrough_tx_per_s"] for other in unthrottled)
            run["passthrough_share_of_unthrottled"] = round(
                run["passthrough_tx_per_s"] / reference, 2
            )

    figures["settings"] = {
        "broker_commit_interval_s": 0.2,
        "producer_linger_s": 0.002,
        "producer_buffer_messages": fraud_agent.PRODUCER_BUFFER_MESSAGES,
        "producer_acks": 1,
        "producer_max_batch_size": fraud_agent.PRODUCER_BATCH_BYTES,
        "take_events_max": fraud_agent.TAKE_MAX,
        "take_events_within_s": fraud_agent.TAKE_WITHIN_S,
        "faust_worker": faust_app.__name__ + ".create_app",
    }
    figures["targets"] = {
        "p99_ms_at_1000_tx_per_s": TARGET_P99_MS,
        "at_alert_rates_up_to": TARGET_MAX_ALERT_RATE,
        "tx_per_s": TARGET_TX_PER_S,
        "share_of_baseline": TARGET_SHARE,
    }
    path = write_result("stream_fraud", figures)
    table = Table(title="transactions worker", header_style="bold")
    for name in ("figure", "value", "target"):
        table.add_column(name, justify="left" if name == "figure" else "right")
    for run, base_run in zip(figures["throughput"], figures["baseline"], strict=True):
        table.add_row(
            f"throughput, {run['variant']}", f"{run['tx_per_s']:,} tx/s", f">= {TARGET_TX_PER_S:,}"
        )
        table.add_row("  baseline passthrough, same broker", f"{base_run['tx_per_s']:,} tx/s", "")
        table.add_row(
            "  CPU per record: worker / baseline",
            f"{run['cpu_us_per_tx']:.0f} / {base_run['cpu_us_per_record']:.0f} us",
            "",
        )
        table.add_row(
            "  share of baseline", f"{run['share_of_baseline']:.1%}", f">= {TARGET_SHARE:.0%}"
        )
    for lat in figures["latency"]:
        title = f"latency, stream at {lat['stream_pinned_to'][11:16]} UTC"
        if lat["cpu_burners"]:
            title += f", {lat['cpu_burners']} CPU burners"
        table.add_row(title, "", "")
        table.add_row(
            "  alert rate",
            f"{lat['alert_rate']:.1%} ({lat['alerts']:,} alerts)",
            f"<= {TARGET_MAX_ALERT_RATE:.0%} must hold",
        )
        passthrough_note = f"{lat['passthrough_tx_per_s']:,} tx/s"
        if "passthrough_share_of_unthrottled" in lat:
            passthrough_note += f" ({lat['passthrough_share_of_unthrottled']:.0%} of unthrottled)"
        table.add_row("  same-run passthrough", passthrough_note, "")
        hop = lat.get("broker_one_hop_ms", {})
        table.add_row(
            "  broker floor, one hop p50 / p99",
            f"{hop.get('p50', float('nan')):.0f} / {hop.get('p99', float('nan')):.0f} ms",
            "",
        )
        for q in ("p50", "p99"):
            table.add_row(
                f"  {q}, event -> alert received",
                f"{lat['event_to_alert_received_ms'].get(q, float('nan')):.0f} ms",
                f"<= {TARGET_P99_MS:.0f} ms" if q == "p99" else "",
            )
        table.add_row("  max lag", str(lat["lag_samples_max"]), "")
    console.print(table)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
