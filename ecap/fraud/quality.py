"""Detection quality against ground truth: pure functions over alerts, labels and ids.

``evaluate_detection`` takes:

* the alerts (transaction id, score, event time, detection time): they decide precision,
  recall and F1 (an alerted transaction is a positive prediction);
* the labels (transaction id, scenario) of the generator's ``fraud-labels`` topic;
* the ids of every transaction the detector was given, because a fraud that was never
  alerted is a miss and every unalerted transaction is a negative for PR-AUC;
* optionally the detector's score of *every* transaction (``Decision.score``; the
  offline benchmark has them). PR-AUC is then computed from the full ranking. Without
  them (``ecap evaluate fraud`` only sees alerts) a transaction without an alert scores
  0, so the curve is exact above the threshold and one flat step below it. The report
  says which was used (``pr_auc_scores``).

PR-AUC is the average precision (the step-wise area, ties taken together, as
scikit-learn's ``average_precision_score``). Precision is not reported per scenario:
a false positive has no scenario, so there is nothing to divide by; each scenario gets
its recall. Latency is detection time minus event time, in milliseconds, with linearly
interpolated percentiles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AlertRecord:
    transaction_id: str
    score: float
    event_time: datetime
    detection_time: datetime


@dataclass(frozen=True, slots=True)
class LabelRecord:
    transaction_id: str
    scenario: str


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    frauds: int
    detected: int
    recall: float


@dataclass(frozen=True)
class QualityReport:
    transactions: int
    frauds: int
    alerts: int
    true_positives: int
    false_positives: int
    precision: float
    recall: float
    f1: float
    pr_auc: float
    pr_auc_scores: str
    """'all transactions' or 'alerts only (others 0)'."""
    by_scenario: dict[str, ScenarioResult] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_detection(
    alerts: Iterable[AlertRecord],
    labels: Iterable[LabelRecord],
    transaction_ids: Iterable[str],
    scores: Mapping[str, float] | None = None,
) -> QualityReport:
    """Precision, recall, F1, PR-AUC, per-scenario recall and latency (module docstring)."""
    by_alert = {a.transaction_id: a for a in alerts}
    scenario = {label.transaction_id: label.scenario for label in labels}
    universe = set(transaction_ids) | set(scenario) | set(by_alert)
    frauds = len(scenario)
    tp = sum(1 for tx in by_alert if tx in scenario)
    fp = len(by_alert) - tp
    precision = tp / len(by_alert) if by_alert else 0.0
    recall = tp / frauds if frauds else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    if scores is not None:
        ranking = [(scores.get(tx, 0.0), tx in scenario) for tx in universe]
        used = "all transactions"
    else:
        ranking = [
            (by_alert[tx].score if tx in by_alert else 0.0, tx in scenario) for tx in universe
        ]
        used = "alerts only (others 0)"

    per_scenario: dict[str, ScenarioResult] = {}
    totals = Counter(scenario.values())
    found = Counter(s for tx, s in scenario.items() if tx in by_alert)
    for name in sorted(totals):
        per_scenario[name] = ScenarioResult(totals[name], found[name], found[name] / totals[name])

    delays = [(a.detection_time - a.event_time).total_seconds() * 1000.0 for a in by_alert.values()]
    return QualityReport(
        transactions=len(universe),
        frauds=frauds,
        alerts=len(by_alert),
        true_positives=tp,
        false_positives=fp,
        precision=precision,
        recall=recall,
        f1=f1,
        pr_auc=average_precision(ranking),
        pr_auc_scores=used,
        by_scenario=per_scenario,
        latency_ms=latency_summary(delays),
    )


def average_precision(ranking: Iterable[tuple[float, bool]]) -> float:
    """Area under the precision-recall curve, step-wise, tied scores as one step."""
    ordered = sorted(ranking, key=lambda pair: -pair[0])
    positives = sum(1 for _, positive in ordered if positive)
    if not positives:
        return 0.0
    area = 0.0
    tp = fp = 0
    previous_recall = 0.0
    i = 0
    while i < len(ordered):
        score = ordered[i][0]
        while i < len(ordered) and ordered[i][0] == score:
            if ordered[i][1]:
                tp += 1
            else:
                fp += 1
            i += 1
        recall = tp / positives
        area += (recall - previous_recall) * tp / (tp + fp)
        previous_recall = recall
    return area


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + fraction * (sorted_values[high] - sorted_values[low])


def latency_summary(delays_ms: Iterable[float]) -> dict[str, float]:
    values = sorted(delays_ms)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": values[-1],
    }
