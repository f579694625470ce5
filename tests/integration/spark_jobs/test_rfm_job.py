"""The RFM job puts each customer of a hand-made order file in its hand-worked segment."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from spark_jobs import chain, rfm_job
from spark_jobs import lake as tables
from spark_jobs.delta_io import read_delta
from spark_jobs.lake import Lake
from spark_jobs.models import rfm as model

pytestmark = pytest.mark.integration

AS_OF = date(2024, 12, 31)

# Twenty customers; the scores are worked out by hand. With n = 20 and equal values within
# each score group, score = 1 + floor(5 * customers strictly worse / 20):
#   R: 4 at 300 days (1), 4 at 100 (2), 4 at 40 (3), 4 at 10 (4), 4 at 1 (5)
#      -> strictly worse 0, 4, 8, 12, 16 -> scores 1..5.
#   F: 7 with 1 order, 3 with 2, 3 with 3, 3 with 5, 4 with 8
#      -> strictly worse 0, 7, 10, 13, 16 -> scores 1, 2, 3, 4, 5.
#   M: 7 spending 24, 4 spending 60, 4 spending 120, 3 spending 300, 2 spending 960 (EUR)
#      -> strictly worse 0, 7, 11, 15, 18 -> scores 1, 2, 3, 4, 5.
# FM = (F + M + 1) // 2, and the segment is read off the (FM, R) grid of docs/batch.md.
#
# customer: (days since last order, orders, total spend) -> (R, F, M, FM), segment
CUSTOMERS = {
    "c01": ((1, 8, 960.0), (5, 5, 5, 5), "Champions"),
    "c02": ((1, 5, 120.0), (5, 4, 3, 4), "Champions"),
    "c03": ((10, 8, 300.0), (4, 5, 4, 5), "Loyal Customers"),
    "c04": ((40, 5, 300.0), (3, 4, 4, 4), "Loyal Customers"),
    "c05": ((1, 3, 60.0), (5, 3, 2, 3), "Potential Loyalists"),
    "c06": ((10, 2, 60.0), (4, 2, 2, 2), "Potential Loyalists"),
    "c07": ((1, 1, 24.0), (5, 1, 1, 1), "New Customers"),
    "c08": ((10, 1, 24.0), (4, 1, 1, 1), "Promising"),
    "c09": ((40, 3, 120.0), (3, 3, 3, 3), "Need Attention"),
    "c10": ((40, 2, 24.0), (3, 2, 1, 2), "About to Sleep"),
    "c11": ((40, 1, 24.0), (3, 1, 1, 1), "About to Sleep"),
    "c12": ((100, 5, 120.0), (2, 4, 3, 4), "At Risk"),
    "c13": ((300, 3, 120.0), (1, 3, 3, 3), "At Risk"),
    "c14": ((300, 8, 960.0), (1, 5, 5, 5), "Cannot Lose Them"),
    "c15": ((100, 8, 300.0), (2, 5, 4, 5), "Cannot Lose Them"),
    "c16": ((100, 2, 24.0), (2, 2, 1, 2), "Hibernating"),
    "c17": ((100, 1, 24.0), (2, 1, 1, 1), "Hibernating"),
    "c18": ((300, 1, 60.0), (1, 1, 2, 2), "Lost"),
    "c19": ((300, 1, 24.0), (1, 1, 1, 1), "Lost"),
    "c20": ((10, 1, 60.0), (4, 1, 2, 2), "Potential Loyalists"),
}


def _orders_csv(path: Path) -> str:
    """Each customer's orders: equal amounts, a week apart, the last on its recency day."""
    lines = ["customer_id,order_time,amount"]
    for customer, ((recency, orders, spend), _, _) in CUSTOMERS.items():
        last = AS_OF - timedelta(days=recency)
        for k in range(orders):
            day = last - timedelta(days=7 * k)
            lines.append(f"{customer},{day.isoformat()}T12:00:00Z,{spend / orders}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def scored(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """gold/rfm after the job ran on the hand-made orders, by customer."""
    folder = tmp_path_factory.mktemp("rfm")
    the_lake = Lake.at(folder / "lake")
    data = chain.load_silver(spark, the_lake, _orders_csv(folder / "orders.csv"))
    rfm_job.run(the_lake, data.orders, as_of=AS_OF)
    data.release()
    rows = read_delta(spark, the_lake.gold(tables.RFM)).collect()
    return {
        r["customer_id"]: (
            (r["recency_days"], r["frequency"], r["monetary_eur"]),
            (r["r_score"], r["f_score"], r["m_score"], r["fm_score"]),
            r["segment"],
        )
        for r in rows
    }


def test_the_fixture_covers_all_eleven_segments() -> None:
    assert {segment for *_, segment in CUSTOMERS.values()} == set(model.SEGMENTS)


@pytest.mark.parametrize("customer", sorted(CUSTOMERS))
def test_each_customer_gets_its_hand_worked_values_scores_and_segment(
    scored: dict[str, tuple], customer: str
) -> None:
    assert scored[customer] == CUSTOMERS[customer]


def test_spark_scores_equal_the_model_modules_scores(spark: SparkSession) -> None:
    rng = np.random.default_rng(3)
    n = 400
    values = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "recency_days": rng.integers(0, 60, n),  # many ties
            "frequency": rng.geometric(0.4, n),
            "monetary": rng.gamma(2.0, 50.0, n).round(2),
        }
    )
    expected = model.score_rfm(values.set_index("customer_id"))
    got = (
        rfm_job.score(spark.createDataFrame(values.rename(columns={"monetary": "monetary_eur"})))
        .toPandas()
        .set_index("customer_id")
        .loc[expected.index]
    )
    for column in ("r_score", "f_score", "m_score", "fm_score", "segment"):
        assert got[column].tolist() == expected[column].tolist(), column
