"""Gold RFM: recency, frequency and monetary value per customer, scores 1-5, and a segment.

The definitions are those of :mod:`spark_jobs.models.rfm`, computed in Spark:

- values as of a day: days since the last paid order, number of paid orders, net spend
  (EUR), counting orders up to and including that day;
- ``score = 1 + floor(5 * customers strictly worse / customers)``, 5 best on each axis;
- ``fm_score = (f + m + 1) // 2`` and the segment from the (FM, R) grid of the model module.

Writes ``gold/rfm``: ``customer_id, recency_days, frequency, monetary_eur, r_score,
f_score, m_score, fm_score, segment, as_of``.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs import lake
from spark_jobs.gold import as_of_day, write_table
from spark_jobs.lake import Lake
from spark_jobs.models import rfm as model
from spark_jobs.report import JobReport, Progress, quiet
from spark_jobs.silver import paid_orders


def rfm_values(orders: DataFrame, as_of: date) -> DataFrame:
    """Per customer ``recency_days``, ``frequency`` and ``monetary_eur`` as of ``as_of``."""
    day = F.lit(as_of)
    return (
        paid_orders(orders)
        .where(F.col("order_date") <= day)
        .groupBy("customer_id")
        .agg(
            F.datediff(day, F.max("order_date")).alias("recency_days"),
            F.count("*").alias("frequency"),
            F.sum("net_eur").alias("monetary_eur"),
        )
    )


def _strictly_worse(value: str, *, higher_is_better: bool) -> Column:
    """How many customers score strictly worse on ``value`` (one global ranking)."""
    # rank() - 1 counts the rows strictly before this one: with the worst first, the rows
    # strictly worse. Partitioning by a constant makes the one global window explicit.
    worst_first = F.col(value).asc() if higher_is_better else F.col(value).desc()
    return F.rank().over(Window.partitionBy(F.lit(0)).orderBy(worst_first)) - 1


def _segment(r: Column, fm: Column) -> Column:
    """The segment of each (R, FM) cell, read from the model's grid."""
    cells = [
        (F.lit(f"{r_}:{fm_}"), F.lit(model.segment(r_, fm_)))
        for r_ in range(1, 6)
        for fm_ in range(1, 6)
    ]
    grid = F.create_map(*[x for cell in cells for x in cell])
    return grid[F.concat_ws(":", r.cast("string"), fm.cast("string"))]


def score(values: DataFrame) -> DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score``, ``fm_score`` and ``segment``."""
    scored = (
        values.withColumn("_n", F.count("*").over(Window.partitionBy(F.lit(0))))
        .withColumn("_r", _strictly_worse("recency_days", higher_is_better=False))
        .withColumn("_f", _strictly_worse("frequency", higher_is_better=True))
        .withColumn("_m", _strictly_worse("monetary_eur", higher_is_better=True))
        .withColumn("r_score", F.expr("CAST(1 + (5 * _r) DIV _n AS INT)"))
        .withColumn("f_score", F.expr("CAST(1 + (5 * _f) DIV _n AS INT)"))
        .withColumn("m_score", F.expr("CAST(1 + (5 * _m) DIV _n AS INT)"))
        .withColumn("fm_score", F.expr("CAST((f_score + m_score + 1) DIV 2 AS INT)"))
        .drop("_n", "_r", "_f", "_m")
    )
    return scored.withColumn("segment", _segment(F.col("r_score"), F.col("fm_score")))


def run(
    the_lake: Lake,
    orders: DataFrame,
    *,
    as_of: date | None = None,
    progress: Progress = quiet,
) -> JobReport:
    """Score every customer with a paid order up to ``as_of`` and write ``gold/rfm``."""
    report = JobReport("rfm")
    day, report.rows_in = as_of_day(paid_orders(orders), as_of)
    report.facts["rfm as of"] = day.isoformat()
    progress(f"scoring RFM as of {day}")
    table = score(rfm_values(orders, day)).withColumn("as_of", F.lit(day))
    write_table(table, the_lake, lake.RFM, report, metadata={"ecap.as_of": str(day)})
    return report.done()
