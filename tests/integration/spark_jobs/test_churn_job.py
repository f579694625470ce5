"""Churn: labels and features by hand, and the model's quality on a generated history."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark_jobs import churn_job, delta_io
from spark_jobs import lake as tables

if TYPE_CHECKING:  # the fixtures' types, for readers; conftest is not imported at run time
    from conftest import Chained

pytestmark = pytest.mark.integration

CUTOFF = date(2024, 6, 1)


def _orders(spark: SparkSession, rows: list[tuple[str, str, float]]) -> DataFrame:
    """Silver-shaped orders (customer, day, net EUR) with nothing refunded."""
    return spark.createDataFrame(
        [(c, date.fromisoformat(d), a, a, 0.0, "books") for c, d, a in rows],
        "customer_id STRING, order_date DATE, net_eur DOUBLE, gross_eur DOUBLE, "
        "refunded_eur DOUBLE, category STRING",
    )


HAND_ORDERS = [
    ("stays", "2024-05-01", 10.0),
    ("stays", "2024-05-21", 30.0),
    ("stays", "2024-06-01", 99.0),  # the cutoff day: a label, never a feature
    ("leaves", "2024-04-01", 20.0),
    ("new", "2024-06-10", 5.0),  # first order after the cutoff: not active at it
    ("lapsed", "2023-01-01", 5.0),  # more than a year before the cutoff: not active
    ("lapsed", "2024-07-01", 5.0),
    ("late", "2024-04-15", 8.0),
    ("late", "2024-09-01", 8.0),  # after the 90-day window: churned
]


def test_the_label_is_no_paid_order_in_the_horizon_after_the_cutoff(
    spark: SparkSession,
) -> None:
    rows = churn_job.labelled(
        _orders(spark, HAND_ORDERS), CUTOFF, horizon_days=90, active_days=365
    ).collect()
    assert {r["customer_id"]: r["label"] for r in rows} == {
        "stays": 0.0,
        "leaves": 1.0,
        "late": 1.0,
    }


def test_features_use_only_orders_before_the_cutoff(spark: SparkSession) -> None:
    rows = churn_job.features(_orders(spark, HAND_ORDERS), CUTOFF, active_days=365).collect()
    stays = next(r for r in rows if r["customer_id"] == "stays")
    # May 21 and May 1 are 11 and 31 days before June 1; 20 days apart.
    assert (stays["recency_days"], stays["tenure_days"], stays["orders_total"]) == (11, 31, 2)
    assert (stays["revenue_total"], stays["orders_30d"], stays["mean_gap_days"]) == (
        40.0,
        1,
        20.0,
    )


def test_training_cutoffs_end_their_labels_before_the_test_cutoff() -> None:
    train, test = churn_job.cutoffs(date(2024, 12, 31), horizon_days=90, snapshots=2)
    assert test == date(2024, 10, 3)  # Jan 1 minus 90 days: labels Oct 3 .. Dec 31
    assert train == [date(2024, 4, 6), date(2024, 7, 5)]


@pytest.mark.slow
def test_churn_on_a_generated_two_year_history_reaches_the_quality_bar(
    spark: SparkSession, chained: Chained
) -> None:
    """20,000 customers over two years, through ``all``: ROC AUC >= 0.85 and accuracy >=
    0.80 on the time-based holdout, reported by the job and kept in metrics.json."""
    (saved,) = Path(chained.lake.models("churn")).iterdir()
    kept = json.loads((saved / "metrics.json").read_text())
    metrics = kept["metrics"]

    assert metrics["roc_auc"] >= 0.85
    assert metrics["accuracy"] >= 0.80
    reported = " ".join(chained.result.output.split())
    assert (
        f"ROC AUC {metrics['roc_auc']:.3f}, accuracy {metrics['accuracy']:.3f}, "
        f"precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f}"
    ) in reported
    assert (saved / "model" / "metadata").is_dir()
    scores = delta_io.read_delta(spark, chained.lake.gold(tables.CHURN_SCORES))
    assert scores.where(f"model_version = '{kept['version']}'").count() == scores.count() > 10_000
