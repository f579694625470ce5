"""Gold cohorts and revenue: who keeps buying month after month, and what sells where.

``gold/cohort_retention`` is the monthly acquisition-cohort matrix, one row per cell. A
customer's cohort is the month of their first paid order; in each month since (0 = the
acquisition month) the cell counts the cohort's customers with a paid order, their
orders and net revenue. Every cell up to the as-of month is present, empty ones as 0.
``retention_rate`` is active customers over cohort size; the revenue per customer (and
its running total) is over the whole cohort, so cohorts of different sizes compare.

``gold/daily_revenue``: per day, category and region, the paid orders, customers, net
revenue, cost of goods and margin (EUR), from the order lines (a basket over several
categories counts in each). Cost and margin are null for a group where any line's cost
is unknown.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs import lake
from spark_jobs.gold import as_of_day, write_table
from spark_jobs.lake import Lake
from spark_jobs.report import JobReport, Progress, quiet
from spark_jobs.silver import paid_orders

UNKNOWN = "unknown"


def retention(orders: DataFrame, as_of: date) -> DataFrame:
    """The cohort matrix as of ``as_of`` (see the module docstring)."""
    paid = paid_orders(orders).where(F.col("order_date") <= F.lit(as_of))
    month = F.trunc(F.col("order_date"), "month")
    firsts = paid.groupBy("customer_id").agg(F.min(month).alias("cohort_month"))
    sizes = firsts.groupBy("cohort_month").agg(F.count("*").alias("cohort_customers"))
    since = F.months_between(month, F.col("cohort_month")).cast("int")
    cells = (
        paid.join(firsts, "customer_id")
        .groupBy("cohort_month", since.alias("months_since_acquisition"))
        .agg(
            F.countDistinct("customer_id").alias("active_customers"),
            F.count("*").alias("orders"),
            F.sum("net_eur").alias("revenue_eur"),
        )
    )
    last_month = F.trunc(F.lit(as_of), "month")
    grid = (
        sizes.withColumn("_months", F.months_between(last_month, F.col("cohort_month")).cast("int"))
        .withColumn("months_since_acquisition", F.explode(F.sequence(F.lit(0), F.col("_months"))))
        .drop("_months")
    )
    running = Window.partitionBy("cohort_month").orderBy("months_since_acquisition")
    return (
        grid.join(cells, ["cohort_month", "months_since_acquisition"], "left")
        .fillna(0, subset=["active_customers", "orders"])
        .fillna(0.0, subset=["revenue_eur"])
        .withColumn("retention_rate", F.col("active_customers") / F.col("cohort_customers"))
        .withColumn("revenue_per_customer_eur", F.col("revenue_eur") / F.col("cohort_customers"))
        .withColumn(
            "cumulative_revenue_per_customer_eur",
            F.sum("revenue_per_customer_eur").over(running),
        )
        .withColumn("as_of", F.lit(as_of))
    )


def daily_revenue(order_lines: DataFrame, as_of: date) -> DataFrame:
    """Paid revenue, cost and margin per day, category and region (EUR)."""
    lines = order_lines.where(
        (F.col("net_eur") > 0) & (F.col("order_date") <= F.lit(as_of))
    ).fillna(UNKNOWN, subset=["category", "region"])
    return (
        lines.groupBy("order_date", "category", "region")
        .agg(
            F.countDistinct("order_id").alias("orders"),
            F.countDistinct("customer_id").alias("customers"),
            F.sum("net_eur").alias("revenue_eur"),
            F.when(F.count("cost_eur") == F.count("*"), F.sum("cost_eur")).alias("cost_eur"),
        )
        .withColumn("margin_eur", F.col("revenue_eur") - F.col("cost_eur"))
        .withColumn("margin_rate", F.col("margin_eur") / F.col("revenue_eur"))
    )


def run(
    the_lake: Lake,
    orders: DataFrame,
    order_lines: DataFrame,
    *,
    as_of: date | None = None,
    progress: Progress = quiet,
) -> JobReport:
    """Write ``gold/cohort_retention`` and ``gold/daily_revenue``."""
    report = JobReport("cohorts")
    day, report.rows_in = as_of_day(paid_orders(orders), as_of)
    report.facts["cohorts as of"] = day.isoformat()
    progress("building the cohort matrix")
    write_table(retention(orders, day), the_lake, lake.COHORT_RETENTION, report)
    progress("summing daily revenue by category and region")
    write_table(daily_revenue(order_lines, day), the_lake, lake.DAILY_REVENUE, report)
    return report.done()
