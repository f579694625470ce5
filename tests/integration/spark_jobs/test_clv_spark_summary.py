"""The Spark customer summary gives the same numbers as the pandas one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from spark_jobs.models import clv

pytestmark = pytest.mark.integration

# The hand-worked orders of tests/unit/spark_jobs/test_clv_model.py, observation ending 2024-01-31.
ORDERS = [
    ("a", "2024-01-01 10:00:00", 10.0),
    ("a", "2024-01-01 18:00:00", 5.0),
    ("a", "2024-01-05 09:00:00", 20.0),
    ("a", "2024-01-11 12:00:00", 40.0),
    ("b", "2024-01-20 08:00:00", 100.0),
    ("c", "2024-01-10 08:00:00", 8.0),
    ("c", "2024-01-10 20:00:00", 2.0),
    ("d", "2024-01-25 12:00:00", 50.0),
    ("d", "2024-02-03 12:00:00", 70.0),
]


def test_spark_summary_by_hand(spark: SparkSession) -> None:
    orders = spark.createDataFrame(ORDERS, "customer_id STRING, order_time STRING, amount DOUBLE")
    orders = orders.selectExpr("customer_id", "to_timestamp(order_time) AS order_time", "amount")
    summary = clv.spark_summary_from_orders(orders, "2024-01-31")
    got = {r["customer_id"]: tuple(r)[1:] for r in summary.collect()}
    assert got == {
        "a": (2, 10.0, 30.0, 30.0),
        "b": (0, 0.0, 11.0, 0.0),
        "c": (0, 0.0, 21.0, 0.0),
        "d": (0, 0.0, 6.0, 0.0),
    }


def test_spark_summary_equals_pandas_summary(spark: SparkSession) -> None:
    rng = np.random.default_rng(7)
    n = 3000
    orders = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 300, n).astype(str),
            "order_time": pd.Timestamp("2023-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 400 * 24 * 60, n), unit="min"),
            "amount": rng.gamma(2.0, 30.0, n).round(2),
        }
    )
    expected = clv.summary_from_orders(orders, "2023-12-31", period_days=7)
    summary = clv.spark_summary_from_orders(
        spark.createDataFrame(orders), "2023-12-31", period_days=7
    )
    got = pd.DataFrame(summary.toPandas()).set_index("customer_id").loc[expected.index]
    assert (got["frequency"] == expected["frequency"]).all()
    for column in ("recency", "T", "monetary_value"):
        assert np.allclose(got[column], expected[column]), column
