"""The CLV job: historical value by hand, predictions from the fitted BG/NBD and Gamma-Gamma.

The customers "h-weekly" and "h-gone" are hand-made and added to the generated history
the ``chained`` fixture runs through the chain (see conftest.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import SparkSession

from spark_jobs import delta_io
from spark_jobs import lake as tables
from spark_jobs.models import clv as model
from spark_jobs.options import DEFAULTS

if TYPE_CHECKING:  # the fixtures' types, for readers; conftest is not imported at run time
    from conftest import Chained

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _customer(spark: SparkSession, chained: Chained, customer: str) -> dict[str, Any]:
    rows = (
        delta_io.read_delta(spark, chained.lake.gold(tables.CLV))
        .where(f"customer_id = '{customer}'")
        .collect()
    )
    assert len(rows) == 1
    return rows[0].asDict()


def test_historical_revenue_and_margin_per_customer(spark: SparkSession, chained: Chained) -> None:
    weekly = _customer(spark, chained, "h-weekly")
    assert (weekly["orders"], weekly["revenue_eur"], weekly["margin_eur"]) == (26, 1040.0, 390.0)
    gone = _customer(spark, chained, "h-gone")
    assert (gone["orders"], gone["revenue_eur"], gone["margin_eur"]) == (4, 120.0, None)


def test_the_summary_follows_the_standard_definitions(
    spark: SparkSession, chained: Chained
) -> None:
    weekly = _customer(spark, chained, "h-weekly")
    # As of November 27 (the history's last day): 26 purchase days are 25 repeats;
    # June 1 -> November 23 is 175 days, June 1 -> November 27 is 179.
    assert str(weekly["as_of"]) == "2026-11-27"
    assert (weekly["frequency"], weekly["recency"], weekly["T"]) == (25, 175.0, 179.0)
    assert weekly["monetary_value"] == 40.0


def test_predictions_are_the_fitted_models_applied_to_each_customer(
    spark: SparkSession, chained: Chained
) -> None:
    params = delta_io.commit_metadata(chained.lake.gold(tables.CLV), "ecap.clv")
    bgnbd = model.BetaGeoParams(**params["bgnbd"])
    gamma_gamma = model.GammaGammaParams(**params["gamma_gamma"])
    for name in ("h-weekly", "h-gone"):
        row = _customer(spark, chained, name)
        x, t_x, t, m = ([row[k]] for k in ("frequency", "recency", "T", "monetary_value"))
        assert row["p_alive"] == pytest.approx(model.probability_alive(bgnbd, x, t_x, t)[0])
        assert row["expected_purchases"] == pytest.approx(
            model.expected_purchases(bgnbd, DEFAULTS.clv_horizon_days, x, t_x, t)[0]
        )
        assert row["clv_eur"] == pytest.approx(
            model.discounted_clv(bgnbd, gamma_gamma, x, t_x, t, m)[0]
        )


def test_a_customer_still_buying_every_week_outranks_one_who_left(
    spark: SparkSession, chained: Chained
) -> None:
    weekly = _customer(spark, chained, "h-weekly")
    gone = _customer(spark, chained, "h-gone")
    assert weekly["p_alive"] > 0.9 > 0.1 > gone["p_alive"]
    assert weekly["clv_eur"] > 10 * gone["clv_eur"]
    assert weekly["clv_margin_eur"] == pytest.approx(weekly["clv_eur"] * 390.0 / 1040.0)
