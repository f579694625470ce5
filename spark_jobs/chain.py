"""The batch chain: ingest → silver → gold, from Kafka or from an order file.

The CLI's ``all`` and ``schedule`` commands and the benchmark run through here, so what is
measured is what users run. A gold job that the data cannot support (a history shorter
than churn's snapshots, too few repeat buyers for CLV) is reported as skipped and the
others still run; a malformed order file stops the chain before anything is written.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from ecap.currency import REPORTING_CURRENCY
from spark_jobs import churn_job, clv_job, cohorts_job, delta_io, ingest, lake, rfm_job, silver
from spark_jobs.gold import GoldError
from spark_jobs.lake import Lake
from spark_jobs.options import ModelOptions
from spark_jobs.orders_file import read_orders_file
from spark_jobs.report import JobReport, Progress, quiet
from spark_jobs.silver import Silver

GOLD_JOBS = ("rfm", "clv", "churn", "cohorts")


def load_silver(
    spark: SparkSession,
    the_lake: Lake,
    orders_path: str | None = None,
    *,
    currency: str = REPORTING_CURRENCY,
) -> Silver:
    """The silver tables the gold jobs read, cached: from the lake, or built in memory
    from an order file (checked whole first; nothing is written)."""
    if orders_path is None:
        orders = silver.read_orders(spark, the_lake).cache()
        lines = silver.read_order_lines(spark, the_lake).cache()
        return Silver(orders, lines, cached=(orders, lines))
    source = read_orders_file(spark, orders_path, default_currency=currency)
    built = silver.build(source, JobReport("orders file"))
    orders, lines = built.orders.cache(), built.order_lines.cache()
    orders.count()
    lines.count()
    built.release()
    return Silver(orders, lines, cached=(orders, lines))


def run_gold(
    job: str,
    the_lake: Lake,
    data: Silver,
    options: ModelOptions,
    *,
    progress: Progress = quiet,
) -> JobReport:
    """Run one gold job on ``data``."""
    if job == "rfm":
        return rfm_job.run(the_lake, data.orders, as_of=options.as_of, progress=progress)
    if job == "clv":
        return clv_job.run(
            the_lake,
            data.orders,
            as_of=options.as_of,
            horizon_days=options.clv_horizon_days,
            months=options.clv_months,
            monthly_discount=options.monthly_discount,
            fit_sample=options.clv_fit_sample,
            progress=progress,
        )
    if job == "churn":
        report, _ = churn_job.run(
            the_lake,
            data.orders,
            as_of=options.as_of,
            horizon_days=options.churn_horizon_days,
            active_days=options.active_days,
            train_snapshots=options.train_snapshots,
            progress=progress,
        )
        return report
    if job == "cohorts":
        return cohorts_job.run(
            the_lake, data.orders, data.order_lines, as_of=options.as_of, progress=progress
        )
    raise ValueError(f"no gold job named {job!r}; choose from {GOLD_JOBS}")


def run_chain(
    spark: SparkSession,
    the_lake: Lake,
    *,
    bootstrap: str | None = None,
    orders_path: str | None = None,
    currency: str = REPORTING_CURRENCY,
    options: ModelOptions = ModelOptions(),
    skip_if_unchanged: bool = False,
    progress: Progress = quiet,
) -> list[JobReport]:
    """Ingest (from Kafka at ``bootstrap``) or read ``orders_path``, then silver and gold.

    With ``skip_if_unchanged``, a run whose ingest found no new record stops there when
    silver already exists: silver and gold are up to date.
    """
    if (bootstrap is None) == (orders_path is None):
        raise ValueError("the chain reads either Kafka (bootstrap) or an order file")
    reports = []
    if orders_path is not None:
        progress(f"checking {orders_path}")
        source = read_orders_file(spark, orders_path, default_currency=currency)
    else:
        assert bootstrap is not None
        landed = ingest.run(spark, bootstrap, the_lake, progress=progress)
        reports.append(landed)
        up_to_date = delta_io.table_exists(the_lake.silver(lake.ORDERS))
        if skip_if_unchanged and landed.rows_in == 0 and up_to_date:
            return reports
        source = silver.from_bronze(spark, the_lake)
    reports.append(silver.run(spark, the_lake, source, progress=progress))
    data = load_silver(spark, the_lake)
    try:
        for job in GOLD_JOBS:
            try:
                reports.append(run_gold(job, the_lake, data, options, progress=progress))
            except GoldError as exc:
                reports.append(JobReport(job, skipped=str(exc)).done())
    finally:
        data.release()
    return reports
