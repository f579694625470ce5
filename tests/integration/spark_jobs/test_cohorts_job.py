"""Cohort retention and daily revenue, against a hand-made order file worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import SparkSession

from spark_jobs import chain, cohorts_job, delta_io
from spark_jobs import lake as tables
from spark_jobs.lake import Lake

pytestmark = pytest.mark.integration

# January cohort: c1, c2. February cohort: c3, c4. c1 skips February; c3's cost is unknown.
ORDERS_CSV = """\
customer_id,order_time,amount,cost,category,region
c1,2024-01-10T09:00:00Z,100,60,books,EMEA
c2,2024-01-20T09:00:00Z,40,10,toys,NA
c3,2024-02-05T09:00:00Z,80,,books,NA
c4,2024-02-25T09:00:00Z,10,4,books,NA
c1,2024-03-05T09:00:00Z,20,5,toys,EMEA
c4,2024-03-10T09:00:00Z,60,30,books,NA
c2,2024-03-10T18:00:00Z,40,20,books,NA
c1,2024-03-20T09:00:00Z,30,10,toys,EMEA
"""


@pytest.fixture(scope="module")
def cohort_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    folder = tmp_path_factory.mktemp("cohorts")
    (folder / "orders.csv").write_text(ORDERS_CSV)
    the_lake = Lake.at(folder / "lake")
    data = chain.load_silver(spark, the_lake, str(folder / "orders.csv"))
    cohorts_job.run(the_lake, data.orders, data.order_lines, as_of=date(2024, 3, 31))
    data.release()
    return the_lake


def test_the_cohort_matrix_counts_active_customers_and_revenue_per_month(
    spark: SparkSession, cohort_lake: Lake
) -> None:
    rows = delta_io.read_delta(spark, cohort_lake.gold(tables.COHORT_RETENTION)).collect()
    got = {
        (r["cohort_month"], r["months_since_acquisition"]): (
            r["cohort_customers"],
            r["active_customers"],
            r["orders"],
            r["revenue_eur"],
            r["retention_rate"],
            r["revenue_per_customer_eur"],
            r["cumulative_revenue_per_customer_eur"],
        )
        for r in rows
    }
    jan, feb = date(2024, 1, 1), date(2024, 2, 1)
    assert got == {
        (jan, 0): (2, 2, 2, 140.0, 1.0, 70.0, 70.0),
        (jan, 1): (2, 0, 0, 0.0, 0.0, 0.0, 70.0),  # nobody bought: the cell is still there
        (jan, 2): (2, 2, 3, 90.0, 1.0, 45.0, 115.0),
        (feb, 0): (2, 2, 2, 90.0, 1.0, 45.0, 45.0),
        (feb, 1): (2, 1, 1, 60.0, 0.5, 30.0, 75.0),
    }


def test_daily_revenue_by_category_and_region_with_margin(
    spark: SparkSession, cohort_lake: Lake
) -> None:
    rows = delta_io.read_delta(spark, cohort_lake.gold(tables.DAILY_REVENUE)).collect()
    got = {
        (r["order_date"].isoformat(), r["category"], r["region"]): (
            r["orders"],
            r["customers"],
            r["revenue_eur"],
            r["cost_eur"],
            r["margin_eur"],
        )
        for r in rows
    }
    assert got == {
        ("2024-01-10", "books", "EMEA"): (1, 1, 100.0, 60.0, 40.0),
        ("2024-01-20", "toys", "NA"): (1, 1, 40.0, 10.0, 30.0),
        ("2024-02-05", "books", "NA"): (1, 1, 80.0, None, None),
        ("2024-02-25", "books", "NA"): (1, 1, 10.0, 4.0, 6.0),
        ("2024-03-05", "toys", "EMEA"): (1, 1, 20.0, 5.0, 15.0),
        ("2024-03-10", "books", "NA"): (2, 2, 100.0, 50.0, 50.0),
        ("2024-03-20", "toys", "EMEA"): (1, 1, 30.0, 10.0, 20.0),
    }
