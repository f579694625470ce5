"""Benchmark of the batch chain on 1M and 5M generated transactions, against pandas.

For each size, on this machine:

1. the order history generator writes the transactions (purchases and refunds) to parquet;
2. the chain runs on that file as ``python -m spark_jobs all --orders FILE`` does
   (``spark_jobs.chain.run_chain``): the file is checked, silver is built and written
   (de-duplicated, refunds netted, EUR), then every gold job (RFM, CLV, churn, cohorts).
   It runs in a child process, whose tree (the Python driver and Spark's JVM) is sampled
   with psutil for the peak resident memory;
3. the baseline, in another child process: single-process pandas computing the same RFM
   and CLV summary from the same file (refunds netted, EUR, RFM scores and segments with
   ``spark_jobs.models.rfm``, the BG/NBD summary with ``spark_jobs.models.clv``).

Kafka is left out on purpose: the chain reads the generator's file (``--orders``), which
is the path users with their own history take; ingest from Kafka is measured by the
Kafka source's own figures (docs/batch.md). Prints a table and writes
``bench/results/batch.json``. Not a test: it asserts nothing.

    .venv/bin/python bench/batch.py [--sizes 1000000 5000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import write_result

HISTORY_END = datetime(2026, 11, 27, 8, tzinfo=UTC)
HISTORY_DAYS = 730
PILOT_CUSTOMERS = 50_000


# --------------------------------------------------------------------- child processes


def child_chain(orders: str, lake: str, out: str) -> None:
    """Run the chain on ``orders`` into ``lake``; write each job's figures to ``out``."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    from spark_jobs.chain import run_chain
    from spark_jobs.lake import Lake
    from spark_jobs.session import get_spark

    started = time.monotonic()
    spark = get_spark("ecap-bench", log_level="ERROR")
    ready = time.monotonic()
    reports = run_chain(spark, Lake.at(lake), orders_path=orders)
    done = time.monotonic()
    Path(out).write_text(
        json.dumps(
            {
                "spark_start_seconds": round(ready - started, 2),
                "jobs": {
                    r.job: {
                        "seconds": round(r.elapsed, 2),
                        "rows_in": r.rows_in,
                        "rows_out": r.rows_out,
                        "skipped": r.skipped,
                        "facts": r.facts,
                    }
                    for r in reports
                },
                "chain_seconds": round(done - ready, 2),
            }
        )
    )


def child_pandas(orders: str, out: str) -> None:
    """The baseline: RFM and the CLV summary with pandas in this one process."""
    import pandas as pd

    from ecap.currency import EUR_PER_UNIT
    from spark_jobs.models import clv, rfm

    started = time.monotonic()
    table = pd.read_parquet(
        orders,
        columns=[
            *("order_id", "customer_id", "order_time", "amount", "currency", "type"),
            "original_order_id",
        ],
    )
    table = table.drop_duplicates("order_id")
    table["eur"] = table["amount"] * table["currency"].map(EUR_PER_UNIT)
    refunds = table[table["type"] == "refund"].groupby("original_order_id")["eur"].sum()
    paid = table[table["type"] == "purchase"].copy()
    paid["net_eur"] = (
        paid["eur"]
        - refunds.reindex(paid["order_id"])
        .fillna(0.0)
        .clip(upper=paid["eur"].to_numpy())
        .to_numpy()
    )
    paid = paid[paid["net_eur"] > 0]
    as_of = paid["order_time"].max()
    values = rfm.rfm_values(paid, as_of, amount_col="net_eur")
    scored = rfm.score_rfm(values)
    summary = clv.summary_from_orders(paid, as_of, amount_col="net_eur")
    done = time.monotonic()
    Path(out).write_text(
        json.dumps(
            {
                "seconds": round(done - started, 2),
                "customers": len(scored),
                "segments": scored["segment"].value_counts().to_dict(),
                "summary_customers": len(summary),
            }
        )
    )


# --------------------------------------------------------------------- measuring


class PeakMemory:
    """Samples the resident memory of a process and all its children, keeps the peak."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                total = 0
                for process in processes:
                    try:
                        total += process.memory_info().rss
                    except psutil.Error:
                        continue
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(self.every_s)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_child(args: list[str]) -> tuple[float, int]:
    """Run ``bench/batch.py <args>`` in a child process: (wall seconds, peak RSS bytes)."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, __file__, *args])
    memory = PeakMemory(process.pid)
    code = process.wait()
    peak = memory.stop()
    if code != 0:
        raise SystemExit(f"child {args[0]} failed with exit code {code}")
    return time.monotonic() - started, peak


def generate(rows_wanted: int, folder: Path) -> dict[str, Any]:
    """Write about ``rows_wanted`` transactions (purchases and refunds) to parquet."""
    from ecap.generator import history
    from ecap.generator.sinks import write_table

    pilot = history.generate(
        history.HistoryConfig(PILOT_CUSTOMERS, HISTORY_DAYS, seed=1, end=HISTORY_END)
    )
    customers = round(rows_wanted * PILOT_CUSTOMERS / len(pilot))
    started = time.monotonic()
    orders = history.generate(
        history.HistoryConfig(customers, HISTORY_DAYS, seed=1, end=HISTORY_END)
    )
    path = folder / f"orders-{rows_wanted}.parquet"
    write_table(history.to_table(orders), path)
    return {
        "path": str(path),
        "customers": customers,
        "transactions": len(orders),
        "refunds": int(orders.refund.sum()),
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "generate_seconds": round(time.monotonic() - started, 2),
    }


def spark_segments(lake: Path) -> dict[str, int]:
    """Customers per segment in the chain's gold/rfm, read by deltalake itself."""
    import pyarrow as pa
    from deltalake import DeltaTable, QueryBuilder

    reader = (
        QueryBuilder()
        .register("rfm", DeltaTable(str(lake / "gold" / "rfm")))
        .execute("SELECT segment, count(*) AS n FROM rfm GROUP BY segment")
    )
    return {row["segment"]: row["n"] for row in pa.table(reader.read_all()).to_pylist()}


def measure(rows_wanted: int, folder: Path) -> dict[str, Any]:
    data = generate(rows_wanted, folder)
    n = data["transactions"]
    out = folder / f"chain-{rows_wanted}.json"
    lake = folder / f"lake-{rows_wanted}"
    load_before = os.getloadavg()
    wall, peak = run_child(["--child-chain", data["path"], str(lake), str(out)])
    chain = json.loads(out.read_text())
    base_out = folder / f"pandas-{rows_wanted}.json"
    base_wall, base_peak = run_child(["--child-pandas", data["path"], str(base_out)])
    baseline = json.loads(base_out.read_text())
    segments = spark_segments(lake)
    return {
        "data": data,
        "chain": {
            "wall_seconds": round(wall, 1),
            "rows_per_s": round(n / wall),
            "seconds_per_million": round(wall / (n / 1e6), 1),
            "peak_rss_mib": round(peak / 2**20),
            "load_average_before": [round(x, 1) for x in load_before],
            **chain,
        },
        "pandas_baseline": {
            "wall_seconds": round(base_wall, 1),
            "compute_seconds": baseline["seconds"],
            "rows_per_s": round(n / base_wall),
            "peak_rss_mib": round(base_peak / 2**20),
            "customers": baseline["customers"],
            "segments": baseline["segments"],
            "same_segments_as_the_chain": segments == baseline["segments"],
        },
        "chain_segments": segments,
    }


def print_table(results: dict[str, dict[str, Any]], growth: float | None) -> None:
    table = Table(title="ecap batch chain: file → silver → RFM, CLV, churn, cohorts")
    for column in ("transactions", "chain wall", "rows/s", "s per 1M", "peak RSS"):
        table.add_column(column, justify="right")
    table.add_column("per job (s)")
    table.add_column("pandas RFM+CLV summary", justify="right")
    for figures in results.values():
        chain, base = figures["chain"], figures["pandas_baseline"]
        jobs = ", ".join(f"{name} {job['seconds']:.0f}" for name, job in chain["jobs"].items())
        table.add_row(
            f"{figures['data']['transactions']:,}",
            f"{chain['wall_seconds']:.0f} s",
            f"{chain['rows_per_s']:,}",
            f"{chain['seconds_per_million']:.1f}",
            f"{chain['peak_rss_mib']:,} MiB",
            jobs,
            f"{base['wall_seconds']:.0f} s, {base['rows_per_s']:,} rows/s, "
            f"{base['peak_rss_mib']:,} MiB",
        )
    console = Console(width=160)
    console.print(table)
    for size, figures in results.items():
        same = figures["pandas_baseline"]["same_segments_as_the_chain"]
        console.print(f"{size}: RFM segment counts of the chain and of pandas are equal: {same}")
    if growth is not None:
        console.print(f"cost per million transactions, largest over smallest: {growth:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--workdir", type=Path, help="keep files and lakes here")
    parser.add_argument("--child-chain", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--child-pandas", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_chain:
        child_chain(*args.child_chain)
        return
    if args.child_pandas:
        child_pandas(*args.child_pandas)
        return

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.workdir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        results = {f"{size / 1e6:g}M": measure(size, folder) for size in args.sizes}
    costs = [r["chain"]["seconds_per_million"] for r in results.values()]
    growth = round(costs[-1] / costs[0], 2) if len(costs) > 1 else None
    print_table(results, growth)
    path = write_result(
        "batch",
        {"sizes": results, "cost_per_million_growth_largest_over_smallest": growth},
        config={
            "history_days": HISTORY_DAYS,
            "seed": 1,
            "spark_master": "local[*] (ECAP_SPARK_MASTER unset)",
            "driver_memory": "4g (spark_jobs.session default)",
            "input": "generated order history parquet, read with --orders (no Kafka)",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
