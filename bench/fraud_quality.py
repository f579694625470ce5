"""Offline detection quality and per-transaction cost of the fraud detector (``ecap.fraud``).

For each seed, in one process and without Kafka:

1. the generator's stream (``ecap.generator.stream.Stream``, default mix, 1% fraud) is
   drawn; its ``transactions`` records are decoded with ``ecap.events.decode`` as the
   worker does, its ``fraud-labels`` are kept aside for scoring only;
2. every transaction goes through ``Detector.process`` in event-time order, starting
   from empty state (the cold start is part of the measurement), with the user and
   merchant states round-tripped through their bytes after every batch of
   ``--batch`` transactions, as the worker's changelog would;
3. ``evaluate_detection`` scores the alerts against the labels: overall precision,
   recall, F1, PR-AUC from the score of every transaction, and recall per scenario;
4. the detector is timed in steady state (after ``--warm-up`` transactions) on the next
   ``--time-limit`` ones, interleaved with its same-run baseline, the cost of decoding
   them, and with the state round trip (see :func:`timing`); the machine is shared, so
   the minimum of ``--repeats`` is the best estimate of the unloaded cost and the
   detect/decode ratio the most comparable figure across runs.

Prints a table and writes ``bench/results/fraud_quality.json``. Not a test: it asserts
nothing. Latency from event to alert needs the broker and is measured by the worker's own
benchmark, not here.

    .venv/bin/python bench/fraud_quality.py [--rate 2000] [--duration 7200] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import write_result
from ecap import topics
from ecap.events import FraudLabel, Transaction, decode
from ecap.fraud.detector import Detector
from ecap.fraud.merchant import MerchantStats
from ecap.fraud.model import AnomalyModel
from ecap.fraud.quality import (
    AlertRecord,
    LabelRecord,
    QualityReport,
    evaluate_detection,
)
from ecap.fraud.rules import load_default_rules
from ecap.fraud.state import UserState
from ecap.generator.stream import Stream, StreamConfig

console = Console()


@dataclass
class Run:
    """One seed's stream, decoded: raw transaction payloads, models and labels."""

    seed: int
    payloads: list[bytes]
    transactions: list[Transaction]
    labels: list[FraudLabel]
    records: int


@dataclass
class Outcome:
    scores: dict[str, float] = field(default_factory=dict)
    """Score of every transaction decided (first delivery)."""
    top_reason: dict[str, str] = field(default_factory=dict)
    """Largest contribution of every alerted transaction."""
    users: dict[str, bytes] = field(default_factory=dict)
    """Each user's state at the end, as bytes."""
    model_bytes: int = 0


def draw(config: StreamConfig) -> Run:
    payloads: list[bytes] = []
    labels: list[FraudLabel] = []
    records = 0
    for record in Stream(config).records():
        records += 1
        if record.topic == topics.TRANSACTIONS:
            payloads.append(record.value)
        elif record.topic == topics.FRAUD_LABELS:
            labels.append(decode(FraudLabel, record.value))
    transactions = [decode(Transaction, p) for p in payloads]
    return Run(config.seed, payloads, transactions, labels, records)


def detect(transactions: list[Transaction], batch: int, roundtrip: bool = True) -> Outcome:
    """Every transaction through one detector; with ``roundtrip`` the touched user and
    merchant states are serialised after each batch and read back in the next one."""
    detector = Detector(load_default_rules(), AnomalyModel())
    users: dict[str, bytes] = {}
    merchants: dict[str, bytes] = {}
    live_users: dict[str, UserState] = {}
    live_merchants: dict[str, MerchantStats] = {}
    outcome = Outcome()
    for start in range(0, len(transactions), batch):
        if roundtrip:
            live_users, live_merchants = {}, {}
        for tx in transactions[start : start + batch]:
            state = live_users.get(tx.user_id)
            if state is None:
                stored = users.get(tx.user_id)
                state = UserState() if stored is None else UserState.from_bytes(stored)
                live_users[tx.user_id] = state
            merchant = live_merchants.get(tx.merchant_id)
            if merchant is None:
                known = merchants.get(tx.merchant_id)
                merchant = MerchantStats() if known is None else MerchantStats.from_bytes(known)
                live_merchants[tx.merchant_id] = merchant
            decision = detector.process(tx, state, merchant)
            if decision is not None:
                outcome.scores[tx.transaction_id] = decision.score
                if decision.fired:
                    outcome.top_reason[tx.transaction_id] = decision.reasons[0].code
        if roundtrip:
            for user, state in live_users.items():
                users[user] = state.to_bytes()
            for merchant_id, stats in live_merchants.items():
                merchants[merchant_id] = stats.to_bytes()
    if roundtrip:
        outcome.users = users
    outcome.model_bytes = len(detector.model.to_bytes())
    return outcome


def quality(run: Run, outcome: Outcome) -> QualityReport:
    alerts = [
        AlertRecord(
            tx.transaction_id, outcome.scores[tx.transaction_id], tx.event_time, tx.event_time
        )
        for tx in run.transactions
        if tx.transaction_id in outcome.top_reason
    ]
    labels = [LabelRecord(label.transaction_id, label.scenario.value) for label in run.labels]
    return evaluate_detection(alerts, labels, outcome.scores.keys(), outcome.scores)


def false_positive_reasons(run: Run, outcome: Outcome) -> dict[str, int]:
    """The top reason of each false positive, counted: where precision is lost."""
    fraud = {label.transaction_id for label in run.labels}
    top = Counter(code for tx_id, code in outcome.top_reason.items() if tx_id not in fraud)
    return dict(top.most_common())


def timing(run: Run, batch: int, repeats: int, warm: int, limit: int) -> dict[str, Any]:
    """Steady-state cost, in microseconds, of ``limit`` transactions after ``warm`` ones.

    Each repeat restores the detector, user and merchant states reached after the warm-up
    (untimed), then times, interleaved so that the machine's load hits all alike:
    decoding the payloads (``ecap.events.decode``, the worker's own baseline), the
    detector (``Detector.process``, states kept as objects), and one ``to_bytes`` and one
    ``from_bytes`` of every user state the transactions touched. The run's decoded
    transactions are frozen out of the garbage collector first: a worker does not hold
    hours of transactions, and scanning them would be charged to whatever allocates.
    Times are this process's CPU time (``time.process_time``), not wall time: on a shared
    machine the wall clock also counts the time other processes hold the CPU.
    """
    head = run.transactions[:warm]
    tail = run.transactions[warm : warm + limit]
    payloads = run.payloads[warm : warm + limit]
    n = len(tail)
    detector = Detector(load_default_rules(), AnomalyModel())
    users: dict[str, UserState] = {}
    merchants: dict[str, MerchantStats] = {}
    for tx in head:
        state = users.setdefault(tx.user_id, UserState())
        detector.process(tx, state, merchants.setdefault(tx.merchant_id, MerchantStats()))
    model_bytes = detector.model.to_bytes()
    user_bytes = {user: state.to_bytes() for user, state in users.items()}
    merchant_bytes = {m: stats.to_bytes() for m, stats in merchants.items()}
    touched = sorted({tx.user_id for tx in tail})
    per_batch = statistics.mean(
        len({tx.user_id for tx in tail[i : i + batch]}) for i in range(0, n, batch)
    )
    times: dict[str, list[float]] = {"decode": [], "detect": [], "to_bytes": [], "from_bytes": []}
    gc.collect()
    gc.freeze()
    try:
        for _ in range(repeats):
            t0 = time.process_time()
            for payload in payloads:
                decode(Transaction, payload)
            t1 = time.process_time()
            detector = Detector(load_default_rules(), AnomalyModel.from_bytes(model_bytes))
            users = {user: UserState.from_bytes(b) for user, b in user_bytes.items()}
            merchants = {m: MerchantStats.from_bytes(b) for m, b in merchant_bytes.items()}
            t2 = time.process_time()
            for tx in tail:
                state = users.get(tx.user_id)
                if state is None:
                    state = users[tx.user_id] = UserState()
                merchant = merchants.get(tx.merchant_id)
                if merchant is None:
                    merchant = merchants[tx.merchant_id] = MerchantStats()
                detector.process(tx, state, merchant)
            t3 = time.process_time()
            written = [users[user].to_bytes() for user in touched]
            t4 = time.process_time()
            for data in written:
                UserState.from_bytes(data)
            t5 = time.process_time()
            times["decode"].append((t1 - t0) / n * 1e6)
            times["detect"].append((t3 - t2) / n * 1e6)
            times["to_bytes"].append((t4 - t3) / len(touched) * 1e6)
            times["from_bytes"].append((t5 - t4) / len(touched) * 1e6)
    finally:
        gc.unfreeze()
    best = {name: min(values) for name, values in times.items()}
    return {
        "transactions_timed": n,
        "after_warm_up_transactions": len(head),
        "repeats": repeats,
        "load_average_1m": os.getloadavg()[0],
        "decode_us_per_tx": {"min": best["decode"], "median": statistics.median(times["decode"])},
        "detect_us_per_tx": {"min": best["detect"], "median": statistics.median(times["detect"])},
        "detect_over_decode": best["detect"] / best["decode"],
        "state_to_bytes_us": {
            "min": best["to_bytes"],
            "median": statistics.median(times["to_bytes"]),
        },
        "state_from_bytes_us": {
            "min": best["from_bytes"],
            "median": statistics.median(times["from_bytes"]),
        },
        "users_per_batch": per_batch,
        "state_bytes_us_per_tx_at_batch": (best["to_bytes"] + best["from_bytes"])
        * per_batch
        / batch,
    }


def state_sizes(outcome: Outcome) -> dict[str, float]:
    """Bytes of the user states at the end of the run (one changelog record each)."""
    sizes = sorted(len(b) for b in outcome.users.values())
    return {
        "users": len(sizes),
        "median_bytes": float(statistics.median(sizes)),
        "p99_bytes": float(sizes[int(0.99 * (len(sizes) - 1))]),
        "max_bytes": float(sizes[-1]),
        "model_bytes": float(outcome.model_bytes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="generator records/s")
    parser.add_argument("--duration", type=float, default=7200.0, help="simulated seconds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--fraud-rate", type=float, default=0.01)
    parser.add_argument("--customers", type=int, default=None, help="generator default if unset")
    parser.add_argument("--batch", type=int, default=1000, help="transactions per state flush")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats")
    parser.add_argument(
        "--warm-up", type=int, default=20_000, help="transactions before the timed ones"
    )
    parser.add_argument("--time-limit", type=int, default=50_000, help="transactions timed")
    args = parser.parse_args()

    per_seed: dict[str, Any] = {}
    table = Table(title="fraud detection quality (offline)", header_style="bold")
    for column in ("seed", "tx", "frauds", "alerts", "precision", "recall", "F1", "PR-AUC"):
        table.add_column(column, justify="right")
    scenarios: set[str] = set()
    for seed in args.seeds:
        config = StreamConfig(
            rate=args.rate,
            duration=args.duration,
            seed=seed,
            fraud_rate=args.fraud_rate,
            customers=args.customers,
        )
        with console.status(f"seed {seed}: drawing the stream"):
            run = draw(config)
        with console.status(f"seed {seed}: detecting {len(run.transactions):,} transactions"):
            outcome = detect(run.transactions, args.batch)
        report = quality(run, outcome)
        with console.status(f"seed {seed}: timing"):
            cost = timing(run, args.batch, args.repeats, args.warm_up, args.time_limit)
        figures = report.to_dict()
        figures.pop("latency_ms")
        figures["false_positives_by_top_reason"] = false_positive_reasons(run, outcome)
        figures["cost"] = cost
        figures["state"] = state_sizes(outcome)
        figures["generator_records"] = run.records
        per_seed[str(seed)] = figures
        scenarios |= set(report.by_scenario)
        table.add_row(
            str(seed),
            f"{report.transactions:,}",
            f"{report.frauds:,}",
            f"{report.alerts:,}",
            f"{report.precision:.3f}",
            f"{report.recall:.3f}",
            f"{report.f1:.3f}",
            f"{report.pr_auc:.3f}",
        )
    console.print(table)

    recall = Table(title="recall per scenario", header_style="bold")
    recall.add_column("scenario")
    for seed in args.seeds:
        recall.add_column(f"seed {seed}", justify="right")
    for name in sorted(scenarios):
        cells = []
        for seed in args.seeds:
            result = per_seed[str(seed)]["by_scenario"].get(name)
            cells.append(
                f"{result['recall']:.3f} ({result['detected']}/{result['frauds']})"
                if result
                else "-"
            )
        recall.add_row(name, *cells)
    console.print(recall)

    cost = Table(title="cost in microseconds (min of repeats; median)", header_style="bold")
    cost.add_column("seed")
    for column in ("decode / tx", "detect / tx", "detect/decode", "state to+from bytes", "load"):
        cost.add_column(column, justify="right")
    for seed in args.seeds:
        c = per_seed[str(seed)]["cost"]
        cost.add_row(
            str(seed),
            f"{c['decode_us_per_tx']['min']:.1f}; {c['decode_us_per_tx']['median']:.1f}",
            f"{c['detect_us_per_tx']['min']:.1f}; {c['detect_us_per_tx']['median']:.1f}",
            f"{c['detect_over_decode']:.2f}",
            f"{c['state_to_bytes_us']['min'] + c['state_from_bytes_us']['min']:.1f}",
            f"{c['load_average_1m']:.1f}",
        )
    console.print(cost)

    path = write_result(
        "fraud_quality",
        per_seed,
        settings={
            "rate": args.rate,
            "duration_s": args.duration,
            "fraud_rate": args.fraud_rate,
            "customers": args.customers,
            "batch": args.batch,
            "warm_up": "none: every transaction from the first one is scored (cold start)",
        },
    )
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
