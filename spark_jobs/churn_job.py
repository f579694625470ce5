"""Gold churn: who will not buy again soon, learnt from the past with a time-based split.

**Label.** A customer active at a cutoff day *churns* if they place no paid order in the
``horizon_days`` from the cutoff on. **Active** means at least one paid order in the
``active_days`` before the cutoff: a customer silent for longer is already lost, and
counting them would make the model look better than it is.

**Features** use only orders before the cutoff (:func:`features`): recency, tenure,
orders and revenue over the last 30/90/180/365 days and in total, average order value,
the mean gap between purchase days and recency measured in those gaps, distinct
categories and the refunded share.

**Split by time, no leakage.** With ``T = as_of + 1 day``:

- test snapshot: cutoff ``T - H``, labels from ``[T - H, T)``, the last observed days;
- training snapshots: cutoffs ``T - 2H``, ``T - 3H`` ...: each label window ends before
  the test cutoff, so nothing the model learns from comes from the test period.

The model (Spark ML gradient-boosted trees) is evaluated on the test snapshot (ROC AUC,
accuracy, precision and recall of "churns" at probability 0.5), then every active
customer at ``T`` is scored. The model is saved under ``<lake>/models/churn/<version>/``
(``model/`` and ``metrics.json``) and the scores go to ``gold/churn_scores``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow.fs as pafs
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs import lake
from spark_jobs.gold import GoldError, as_of_day, write_table
from spark_jobs.lake import Lake
from spark_jobs.options import DEFAULTS
from spark_jobs.report import JobReport, Progress, quiet
from spark_jobs.silver import paid_orders

THRESHOLD = 0.5
SEED = 7
GBT_PARAMS: dict[str, Any] = {"maxIter": 15, "maxDepth": 3, "stepSize": 0.3}
"""Shallow trees, few rounds: on generated histories this matches a BG/NBD-based
probability of no purchase (the best a model can do when the data follows BG/NBD) and
trains in seconds."""

FEATURES = (
    "recency_days",
    "tenure_days",
    "orders_total",
    "orders_30d",
    "orders_90d",
    "orders_180d",
    "orders_365d",
    "purchase_days",
    "revenue_total",
    "revenue_90d",
    "revenue_365d",
    "avg_order_eur",
    "mean_gap_days",
    "recency_in_gaps",
    "categories",
    "refunded_share",
)


@dataclass(frozen=True)
class ChurnMetrics:
    """Quality on the held-out (latest) snapshot; "positive" means churns."""

    roc_auc: float
    accuracy: float
    precision: float
    recall: float
    test_customers: int
    test_churn_rate: float
    train_customers: int
    train_churn_rate: float


@dataclass(frozen=True)
class ChurnModelInfo:
    """What ``metrics.json`` holds next to a saved model."""

    version: str
    trained_at: str
    as_of: str
    horizon_days: int
    active_days: int
    train_cutoffs: list[str]
    test_cutoff: str
    features: list[str]
    model: str
    metrics: ChurnMetrics
    params: dict[str, Any] = field(default_factory=dict)


def features(orders: DataFrame, cutoff: date, *, active_days: int) -> DataFrame:
    """One row per customer with a paid order in the ``active_days`` before ``cutoff``,
    with :data:`FEATURES` computed from orders strictly before ``cutoff`` only."""
    day = F.lit(cutoff)
    before = orders.where(F.col("order_date") < day).withColumn(
        "_age", F.datediff(day, F.col("order_date"))
    )
    paid = F.col("net_eur") > 0

    def paid_within(days: int) -> Column:
        return F.count(F.when(paid & (F.col("_age") <= days), 1))

    def revenue_within(days: int) -> Column:
        return F.coalesce(
            F.sum(F.when(paid & (F.col("_age") <= days), F.col("net_eur"))), F.lit(0.0)
        )

    per_customer = (
        before.groupBy("customer_id")
        .agg(
            F.min(F.when(paid, F.col("_age"))).alias("recency_days"),
            F.max(F.when(paid, F.col("_age"))).alias("tenure_days"),
            F.count(F.when(paid, 1)).alias("orders_total"),
            paid_within(30).alias("orders_30d"),
            paid_within(90).alias("orders_90d"),
            paid_within(180).alias("orders_180d"),
            paid_within(365).alias("orders_365d"),
            F.countDistinct(F.when(paid, F.col("order_date"))).alias("purchase_days"),
            F.coalesce(F.sum(F.when(paid, F.col("net_eur"))), F.lit(0.0)).alias("revenue_total"),
            revenue_within(90).alias("revenue_90d"),
            revenue_within(365).alias("revenue_365d"),
            F.countDistinct(F.when(paid, F.col("category"))).alias("categories"),
            (F.sum("refunded_eur") / F.sum("gross_eur")).alias("refunded_share"),
        )
        .where(F.col("recency_days") <= active_days)
    )
    gap = (F.col("tenure_days") - F.col("recency_days")) / (F.col("purchase_days") - 1)
    return (
        per_customer.withColumn(
            "mean_gap_days",
            F.when(F.col("purchase_days") > 1, gap).otherwise(F.col("tenure_days").cast("double")),
        )
        .withColumn("recency_in_gaps", F.col("recency_days") / (F.col("mean_gap_days") + 1))
        .withColumn("avg_order_eur", F.col("revenue_total") / F.col("orders_total"))
        .withColumn("refunded_share", F.coalesce(F.col("refunded_share"), F.lit(0.0)))
        .select("customer_id", *[F.col(c).cast("double").alias(c) for c in FEATURES])
    )


def labelled(orders: DataFrame, cutoff: date, *, horizon_days: int, active_days: int) -> DataFrame:
    """The active customers at ``cutoff`` with their features and ``label``: 1.0 when they
    place no paid order in ``[cutoff, cutoff + horizon_days)``."""
    window_end = cutoff + timedelta(days=horizon_days)
    bought = (
        paid_orders(orders)
        .where((F.col("order_date") >= F.lit(cutoff)) & (F.col("order_date") < F.lit(window_end)))
        .select("customer_id")
        .distinct()
        .withColumn("_bought", F.lit(True))
    )
    return (
        features(orders, cutoff, active_days=active_days)
        .join(bought, "customer_id", "left")
        .withColumn("label", F.when(F.col("_bought"), 0.0).otherwise(1.0))
        .drop("_bought")
    )


def cutoffs(as_of: date, horizon_days: int, snapshots: int) -> tuple[list[date], date]:
    """The training cutoffs (oldest first) and the test cutoff (see the module docstring)."""
    end = as_of + timedelta(days=1)
    test = end - timedelta(days=horizon_days)
    train = [test - timedelta(days=horizon_days * k) for k in range(snapshots, 0, -1)]
    return train, test


def pipeline() -> Pipeline:
    assembler = VectorAssembler(inputCols=list(FEATURES), outputCol="features")
    trees = GBTClassifier(featuresCol="features", labelCol="label", seed=SEED, **GBT_PARAMS)
    return Pipeline(stages=[assembler, trees])


def evaluate(model: PipelineModel, test: DataFrame) -> dict[str, float]:
    """ROC AUC and, at :data:`THRESHOLD`, accuracy, precision and recall of "churns"."""
    scored = model.transform(test).withColumn("p_churn", vector_to_array(F.col("probability"))[1])
    auc = BinaryClassificationEvaluator(
        rawPredictionCol="p_churn", labelCol="label", metricName="areaUnderROC"
    ).evaluate(scored)
    predicted = F.col("p_churn") >= THRESHOLD
    actual = F.col("label") == 1.0
    counts = scored.agg(
        F.count(F.when(predicted & actual, 1)).alias("tp"),
        F.count(F.when(predicted & ~actual, 1)).alias("fp"),
        F.count(F.when(~predicted & actual, 1)).alias("fn"),
        F.count(F.when(~predicted & ~actual, 1)).alias("tn"),
    ).collect()[0]
    tp, fp, fn, tn = (int(counts[k]) for k in ("tp", "fp", "fn", "tn"))
    total = tp + fp + fn + tn
    return {
        "roc_auc": float(auc),
        "accuracy": (tp + tn) / total if total else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
    }


def _rate(df: DataFrame) -> tuple[int, float]:
    row = df.agg(F.count("*").alias("n"), F.avg("label").alias("rate")).collect()[0]
    return int(row["n"]), float(row["rate"] or 0.0)


def save(model: PipelineModel, info: ChurnModelInfo, the_lake: Lake) -> str:
    """Save the model and its ``metrics.json`` under ``<lake>/models/churn/<version>/``."""
    folder = the_lake.models(f"churn/{info.version}")
    model.write().overwrite().save(f"{folder}/model")
    fs, root = pafs.FileSystem.from_uri(folder)
    with fs.open_output_stream(f"{root}/metrics.json") as out:
        out.write((json.dumps(asdict(info), indent=2) + "\n").encode())
    return folder


def run(
    the_lake: Lake,
    orders: DataFrame,
    *,
    as_of: date | None = None,
    horizon_days: int = DEFAULTS.churn_horizon_days,
    active_days: int = DEFAULTS.active_days,
    train_snapshots: int = DEFAULTS.train_snapshots,
    progress: Progress = quiet,
) -> tuple[JobReport, ChurnModelInfo]:
    """Train, evaluate, save the model, and score every active customer."""
    report = JobReport("churn")
    day, report.rows_in = as_of_day(paid_orders(orders), as_of)
    train_cutoffs, test_cutoff = cutoffs(day, horizon_days, train_snapshots)
    first = orders.agg(F.min("order_date").alias("d")).collect()[0]["d"]
    if first is None or first >= train_cutoffs[0]:
        span = (train_snapshots + 1) * horizon_days
        raise GoldError(
            f"churn needs orders from before {train_cutoffs[0]} ({span} days before {day}) "
            f"to train on {train_snapshots} snapshot(s) of {horizon_days} days and test on "
            f"one; the orders start {first}. Use a shorter --horizon-days or fewer "
            "--train-snapshots"
        )
    cached = orders.select(
        "customer_id", "order_date", "net_eur", "gross_eur", "refunded_eur", "category"
    ).cache()
    kept = [cached]
    try:
        progress(f"building {train_snapshots} training snapshot(s) and a test snapshot")
        snapshots = [
            labelled(cached, c, horizon_days=horizon_days, active_days=active_days)
            for c in train_cutoffs
        ]
        train = snapshots[0]
        for more in snapshots[1:]:
            train = train.unionByName(more)
        train = train.cache()
        test = labelled(
            cached, test_cutoff, horizon_days=horizon_days, active_days=active_days
        ).cache()
        kept += [train, test]
        train_n, train_rate = _rate(train)
        test_n, test_rate = _rate(test)
        if train_rate in (0.0, 1.0) or test_n == 0:
            raise GoldError(
                f"churn cannot be learnt: {train_n:,} training customers with churn rate "
                f"{train_rate:.0%}, {test_n:,} test customers; the history needs customers "
                "who come back and customers who do not"
            )
        progress(f"training on {train_n:,} customer snapshots")
        model = pipeline().fit(train)
        progress(f"evaluating on {test_n:,} customers at {test_cutoff}")
        scores = evaluate(model, test)
        metrics = ChurnMetrics(
            **scores,
            test_customers=test_n,
            test_churn_rate=test_rate,
            train_customers=train_n,
            train_churn_rate=train_rate,
        )
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        info = ChurnModelInfo(
            version=version,
            trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
            as_of=day.isoformat(),
            horizon_days=horizon_days,
            active_days=active_days,
            train_cutoffs=[c.isoformat() for c in train_cutoffs],
            test_cutoff=test_cutoff.isoformat(),
            features=list(FEATURES),
            model="GBTClassifier",
            metrics=metrics,
            params={**GBT_PARAMS, "seed": SEED},
        )
        folder = save(model, info, the_lake)
        progress("scoring every active customer")
        now = features(cached, day + timedelta(days=1), active_days=active_days)
        scored = (
            model.transform(now)
            .withColumn("churn_probability", vector_to_array(F.col("probability"))[1])
            .select(
                "customer_id",
                "churn_probability",
                (F.col("churn_probability") >= THRESHOLD).alias("churn_predicted"),
                "recency_days",
                "orders_total",
                "revenue_total",
                F.lit(version).alias("model_version"),
                F.lit(day).alias("as_of"),
            )
        )
        write_table(
            scored,
            the_lake,
            lake.CHURN_SCORES,
            report,
            metadata={"ecap.churn": {"model_version": version, "model_path": folder}},
        )
    finally:
        for frame in kept:
            frame.unpersist()
    report.facts["churn model"] = folder
    report.facts["churn test"] = (
        f"ROC AUC {metrics.roc_auc:.3f}, accuracy {metrics.accuracy:.3f}, precision "
        f"{metrics.precision:.3f}, recall {metrics.recall:.3f} ({test_n:,} customers at "
        f"{test_cutoff}, {test_rate:.0%} churn)"
    )
    return report.done(), info
