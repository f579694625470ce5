"""What every gold job shares: the day it models as of, and how its tables are written.

Gold tables are small, derived and rebuilt whole: each run overwrites its table in one
commit (schema included), so a re-run on the same silver writes the same rows, and the
previous versions stay readable by time travel until ``maintain`` vacuums them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs import delta_io
from spark_jobs.lake import Lake
from spark_jobs.report import JobReport


class GoldError(RuntimeError):
    """A model cannot be computed from the orders given."""


def as_of_day(orders: DataFrame, as_of: date | None) -> tuple[date, int]:
    """The day to model as of, and how many orders there are up to it (one pass).

    The day is ``as_of``, or the last day with an order: a history from the past is
    modelled as of its own end, not as of today (when every customer would look lost).
    """
    found = orders.agg(
        F.max("order_date").alias("last"),
        F.count("*").alias("all"),
        F.count(F.when(F.col("order_date") <= F.lit(as_of), 1)).alias("upto")
        if as_of is not None
        else F.count("*").alias("upto"),
    ).collect()[0]
    if found["last"] is None:
        raise GoldError("there are no paid orders to model")
    day = as_of or found["last"]
    assert isinstance(day, date)
    if not found["upto"]:
        raise GoldError(f"no paid order is on or before {day}; the first is later")
    return day, int(found["upto"])


def write_table(
    df: DataFrame,
    the_lake: Lake,
    name: str,
    report: JobReport,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> delta_io.CommitResult:
    """Overwrite gold table ``name`` with ``df`` in one commit."""
    path = the_lake.gold(name)
    # One file; a shuffle rather than coalesce keeps the work before it parallel.
    result = delta_io.write_delta(
        df.repartition(1), path, mode="overwrite", overwrite_schema=True, metadata=metadata
    )
    return report.wrote(f"gold/{name}", path, result)
