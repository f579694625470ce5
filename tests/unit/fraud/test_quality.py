"""Evaluation metrics on a tiny example worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecap.fraud.quality import (
    AlertRecord,
    LabelRecord,
    average_precision,
    evaluate_detection,
    percentile,
)

T = datetime(2026, 11, 27, 12, tzinfo=UTC)
IDS = ["t1", "t2", "t3", "t4", "t5", "t6"]
LABELS = [
    LabelRecord("t1", "card_testing"),
    LabelRecord("t2", "odd_hours"),
    LabelRecord("t3", "odd_hours"),
]
ALERTS = [
    AlertRecord("t1", 0.9, T, T + timedelta(milliseconds=100)),
    AlertRecord("t2", 0.8, T, T + timedelta(milliseconds=200)),
    AlertRecord("t4", 0.7, T, T + timedelta(milliseconds=300)),
]


def test_precision_recall_and_f1() -> None:
    report = evaluate_detection(ALERTS, LABELS, IDS)
    # 2 of 3 alerts are fraud, 2 of 3 frauds are alerted
    assert (report.true_positives, report.false_positives) == (2, 1)
    assert report.precision == pytest.approx(2 / 3)
    assert report.recall == pytest.approx(2 / 3)
    assert report.f1 == pytest.approx(2 / 3)


def test_pr_auc_with_unalerted_transactions_at_zero() -> None:
    # ranking t1+ t2+ t4- then {t3+, t5-, t6-} tied at 0:
    # 1/3 * 1 + 1/3 * 1 + 0 * 2/3 + 1/3 * 3/6 = 5/6
    report = evaluate_detection(ALERTS, LABELS, IDS)
    assert report.pr_auc == pytest.approx(5 / 6)
    assert report.pr_auc_scores == "alerts only (others 0)"


def test_pr_auc_from_every_score() -> None:
    scores = {"t1": 0.9, "t2": 0.8, "t4": 0.7, "t3": 0.4, "t5": 0.1, "t6": 0.0}
    # t3 now ranks alone after t4: 1/3 + 1/3 + 1/3 * 3/4 = 0.9167
    report = evaluate_detection(ALERTS, LABELS, IDS, scores)
    assert report.pr_auc == pytest.approx(11 / 12)
    assert report.pr_auc_scores == "all transactions"


def test_recall_per_scenario() -> None:
    report = evaluate_detection(ALERTS, LABELS, IDS)
    assert {k: (v.detected, v.frauds) for k, v in report.by_scenario.items()} == {
        "card_testing": (1, 1),
        "odd_hours": (1, 2),
    }
    assert report.by_scenario["odd_hours"].recall == 0.5


def test_latency_percentiles_are_interpolated() -> None:
    latency = evaluate_detection(ALERTS, LABELS, IDS).latency_ms
    # 100, 200, 300 ms: p95 at rank 1.9 -> 200 + 0.9 * 100
    assert (latency["p50"], latency["p95"], latency["p99"]) == pytest.approx((200, 290, 298))


def test_a_labelled_transaction_missing_from_the_ids_still_counts_as_missed() -> None:
    report = evaluate_detection(ALERTS, LABELS, ["t1", "t2", "t4"])
    assert report.transactions == 6 - 2  # t3 added from the labels; t5, t6 unknown
    assert report.recall == pytest.approx(2 / 3)


def test_average_precision_of_a_perfect_ranking_is_one() -> None:
    assert average_precision([(0.9, True), (0.8, True), (0.1, False)]) == 1.0


def test_percentile_of_one_value() -> None:
    assert percentile([42.0], 0.99) == 42.0
