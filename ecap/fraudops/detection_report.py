"""``ecap evaluate fraud``: join the alerts with the generator's labels and score detection.

Inputs, gathered here; the math is ``ecap.fraud.quality``:

* alerts from the ``fraud-alerts`` topic (default) or the cases in PostgreSQL, one per
  transaction (a redelivered alert counts once);
* labels from the ``fraud-labels`` topic or a ``--labels-file`` (JSON lines);
* the ids of every transaction on ``transactions``: the negatives for PR-AUC.

Overall figures use every transaction. **Per scenario**, a scenario's frauds are scored
against the legitimate transactions only (the other scenarios' frauds are left out), so
precision, F1 and PR-AUC mean "how well this kind of attack is told apart from normal
traffic"; the false positives are the same in every row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from confluent_kafka import Consumer, TopicPartition
from rich.table import Table

from ecap.db import cases, connect
from ecap.events import EventError, FraudAlert, FraudLabel, decode
from ecap.fraud.quality import AlertRecord, LabelRecord, QualityReport, evaluate_detection
from ecap.kafka import offsets, snapshot
from ecap.topics import FRAUD_ALERTS, FRAUD_LABELS, TRANSACTIONS

WORKER_GROUP = "ecap-transactions"
"""Consumer group of ``ecap worker transactions`` (the Faust app id)."""


class EvaluationError(RuntimeError):
    """An input cannot be read; the message says which and what to do."""


@dataclass
class Inputs:
    alerts: list[AlertRecord]
    labels: list[LabelRecord]
    transaction_ids: list[str]
    sources: dict[str, str] = field(default_factory=dict)
    unprocessed: int | None = None
    """Transactions the worker group has not committed yet (None: unknown)."""


@dataclass(frozen=True)
class Evaluation:
    overall: QualityReport
    by_scenario: dict[str, QualityReport]
    inputs: Inputs

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "by_scenario": {name: r.to_dict() for name, r in self.by_scenario.items()},
            "inputs": {
                **self.inputs.sources,
                "alerts": len(self.inputs.alerts),
                "labels": len(self.inputs.labels),
                "transactions": len(self.inputs.transaction_ids),
                "unprocessed_transactions": self.inputs.unprocessed,
            },
        }


# ---------------------------------------------------------------------- inputs


def _alert_record(alert: FraudAlert) -> AlertRecord:
    return AlertRecord(alert.transaction_id, alert.score, alert.event_time, alert.detection_time)


def alerts_from_topic(bootstrap: str) -> list[AlertRecord]:
    found: dict[str, AlertRecord] = {}
    for message in _records(bootstrap, FRAUD_ALERTS):
        try:
            alert = decode(FraudAlert, message.value() or b"")
        except EventError:
            continue
        found.setdefault(alert.transaction_id, _alert_record(alert))
    return list(found.values())


async def alerts_from_postgres(dsn: str) -> list[AlertRecord]:
    conn = await connect(dsn)
    try:
        await cases.check_schema(conn)
        rows = await cases.all_alerts(conn)
    except cases.SchemaMissing as exc:
        raise EvaluationError(str(exc)) from exc
    except asyncpg.PostgresError as exc:
        raise EvaluationError(f"reading the cases failed: {exc}") from exc
    finally:
        await conn.close()
    return [
        AlertRecord(row.transaction_id, row.score, row.event_time, row.detection_time)
        for row in rows
    ]


def _label_record(label: FraudLabel) -> LabelRecord:
    return LabelRecord(label.transaction_id, label.scenario.value)


def labels_from_topic(bootstrap: str) -> list[LabelRecord]:
    labels = []
    for message in _records(bootstrap, FRAUD_LABELS):
        try:
            labels.append(_label_record(decode(FraudLabel, message.value() or b"")))
        except EventError:
            continue
    return labels


def labels_from_file(path: Path) -> list[LabelRecord]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise EvaluationError(f"cannot read the labels file {path}: {exc.strerror}") from exc
    labels = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            labels.append(_label_record(decode(FraudLabel, line)))
        except EventError as exc:
            raise EvaluationError(f"{path}:{number} is not a fraud label: {exc}") from exc
    return labels


def transaction_ids(bootstrap: str) -> list[str]:
    ids = []
    for message in _records(bootstrap, TRANSACTIONS):
        try:
            value = orjson.loads(message.value() or b"")
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get("transaction_id"), str):
            ids.append(value["transaction_id"])
    return ids


def unprocessed(bootstrap: str, group: str = WORKER_GROUP) -> int | None:
    """Records on ``transactions`` beyond the worker group's committed offsets."""
    ranges = offsets.partition_ranges(bootstrap, [TRANSACTIONS])
    if not ranges:
        return None
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        committed = consumer.committed(
            [TopicPartition(topic, partition) for topic, partition in ranges], timeout=10
        )
    finally:
        consumer.close()
    left = 0
    for tp in committed:
        first, end = ranges[(tp.topic, tp.partition)]
        left += end - (tp.offset if tp.offset >= 0 else first)
    return left


def _records(bootstrap: str, topic: str) -> Iterable[Any]:
    try:
        yield from snapshot.records(bootstrap, topic)
    except snapshot.SnapshotError as exc:
        raise EvaluationError(str(exc)) from exc


# ---------------------------------------------------------------------- scoring


def evaluate(inputs: Inputs) -> Evaluation:
    """Overall and per-scenario reports (see the module docstring)."""
    overall = evaluate_detection(inputs.alerts, inputs.labels, inputs.transaction_ids)
    by_scenario: dict[str, QualityReport] = {}
    for scenario in sorted({label.scenario for label in inputs.labels}):
        others = {label.transaction_id for label in inputs.labels if label.scenario != scenario}
        by_scenario[scenario] = evaluate_detection(
            [a for a in inputs.alerts if a.transaction_id not in others],
            [label for label in inputs.labels if label.scenario == scenario],
            [tx for tx in inputs.transaction_ids if tx not in others],
        )
    return Evaluation(overall, by_scenario, inputs)


def write_json(evaluation: Evaluation, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(evaluation.to_dict(), indent=2, default=str) + "\n")


def table(evaluation: Evaluation) -> Table:
    """Quality as a rich table: the overall row first, then one row per scenario."""
    out = Table(title="fraud detection quality", header_style="bold")
    out.add_column("scenario", no_wrap=True)
    for name in ("frauds", "found", "FP", "prec.", "recall", "F1", "PR-AUC"):
        out.add_column(name, justify="right", no_wrap=True)

    def row(title: str, report: QualityReport, style: str = "") -> None:
        out.add_row(
            title,
            f"{report.frauds:,}",
            f"{report.true_positives:,}",
            f"{report.false_positives:,}",
            f"{report.precision:.3f}",
            f"{report.recall:.3f}",
            f"{report.f1:.3f}",
            f"{report.pr_auc:.3f}",
            style=style,
        )

    row("overall", evaluation.overall, "bold")
    for scenario, report in evaluation.by_scenario.items():
        row(scenario, report)
    return out


REPLAY_LATENCY_MS = 3_600_000.0
"""A median latency above this means the event times were not the wall clock of the run."""


def latency_line(evaluation: Evaluation) -> str:
    """Detection time minus event time over all alerts, as one line (with a hint when the
    event times were simulated in the past, as a ``--seed`` run's are by default)."""
    latency = evaluation.overall.latency_ms
    if not latency.get("count"):
        return "latency: no alerts"
    line = (
        f"latency, event time to detection: p50 {latency['p50']:,.0f} ms, "
        f"p95 {latency['p95']:,.0f} ms, p99 {latency['p99']:,.0f} ms "
        f"over {latency['count']:,.0f} alerts (per scenario in --json)"
    )
    if latency["p50"] > REPLAY_LATENCY_MS:
        line += (
            "\n  the event times lie hours before detection: the stream was simulated in "
            "the past (a seeded 'ecap generate stream' starts at a fixed time unless "
            "--start now), so this is not the detection delay; generate with --start now "
            "to measure it"
        )
    return line
