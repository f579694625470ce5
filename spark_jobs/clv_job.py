"""Gold CLV: what each customer has been worth, and what they are expected to be worth.

Historical, from the paid orders up to the as-of day: first and last order, orders, net
revenue and margin (EUR).

Predictive, with the models of :mod:`spark_jobs.models.clv` on the standard summary in
days (same-day orders merge; the first purchase is excluded from frequency and monetary
value):

- BG/NBD and Gamma-Gamma are fitted by maximum likelihood on the driver. Above
  ``fit_sample`` customers they are fitted on a random sample of that size: four or three
  population parameters are pinned down long before a million customers, and the fit then
  costs the same at any scale. Every customer is then scored in Spark with the fitted
  parameters.
- Per customer: ``p_alive``, ``expected_purchases`` over ``horizon_days``,
  ``expected_avg_spend_eur`` (Gamma-Gamma's conditional mean, the population mean for
  one-time buyers), ``clv_eur`` (discounted expected revenue over ``months``) and
  ``clv_margin_eur`` (the same at the customer's historical margin rate, when known).

Writes ``gold/clv``; the fitted parameters go in the commit metadata (``ecap.clv``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs import lake
from spark_jobs.gold import GoldError, as_of_day, write_table
from spark_jobs.lake import Lake
from spark_jobs.models import clv as model
from spark_jobs.options import DEFAULTS
from spark_jobs.report import JobReport, Progress, quiet
from spark_jobs.silver import paid_orders

SAMPLE_SEED = 20_240_101

PREDICTION_SCHEMA = (
    "customer_id STRING, frequency LONG, recency DOUBLE, T DOUBLE, monetary_value DOUBLE, "
    "p_alive DOUBLE, expected_purchases DOUBLE, expected_avg_spend_eur DOUBLE, clv_eur DOUBLE"
)


def history(orders: DataFrame, as_of: date) -> DataFrame:
    """Per customer: first and last order time, orders, net revenue, margin (EUR)."""
    paid = paid_orders(orders).where(F.col("order_date") <= F.lit(as_of))
    return paid.groupBy("customer_id").agg(
        F.min("order_time").alias("first_order"),
        F.max("order_time").alias("last_order"),
        F.count("*").alias("orders"),
        F.sum("net_eur").alias("revenue_eur"),
        # Null unless every order's margin is known.
        F.when(F.count("margin_eur") == F.count("*"), F.sum("margin_eur")).alias("margin_eur"),
    )


def summary(orders: DataFrame, as_of: date) -> DataFrame:
    """The BG/NBD summary in days (``customer_id, frequency, recency, T, monetary_value``)."""
    return model.spark_summary_from_orders(
        paid_orders(orders).select("customer_id", "order_time", "net_eur"),
        as_of,
        amount_col="net_eur",
    )


def fit(
    summary_df: DataFrame, *, fit_sample: int = DEFAULTS.clv_fit_sample
) -> tuple[model.BetaGeoParams, model.GammaGammaParams, int]:
    """Fit both models on the driver (on a sample above ``fit_sample`` customers); also
    return how many customers the fit saw."""
    customers = summary_df.count()
    fitted_on = summary_df
    if customers > fit_sample:
        fitted_on = summary_df.sample(fraction=fit_sample / customers, seed=SAMPLE_SEED)
    local = pd.DataFrame(fitted_on.select(*model.SUMMARY_COLUMNS).toPandas())
    frequency = local["frequency"].to_numpy(dtype=np.float64)
    try:
        bgnbd = model.fit_bgnbd(frequency, local["recency"], local["T"])
        gamma_gamma = model.fit_gamma_gamma(frequency, local["monetary_value"])
    except model.FitError as exc:
        raise GoldError(f"the CLV models cannot be fitted to these orders: {exc}") from exc
    if gamma_gamma.q <= 1:
        raise GoldError(
            f"the Gamma-Gamma fit gives q = {gamma_gamma.q:.3f} <= 1, an infinite mean spend; "
            "the spends are too dispersed for the model (check the currency of the amounts)"
        )
    return bgnbd, gamma_gamma, len(local)


def _predictor(
    bgnbd: model.BetaGeoParams,
    gamma_gamma: model.GammaGammaParams,
    horizon_days: float,
    months: int,
    monthly_discount: float,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function scoring customers with fitted parameters (runs in workers)."""

    def predict(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            x, t_x, t = frame["frequency"], frame["recency"], frame["T"]
            m = frame["monetary_value"]
            out = frame[["customer_id", *model.SUMMARY_COLUMNS]].copy()
            out["p_alive"] = model.probability_alive(bgnbd, x, t_x, t)
            out["expected_purchases"] = model.expected_purchases(bgnbd, horizon_days, x, t_x, t)
            out["expected_avg_spend_eur"] = model.expected_average_spend(gamma_gamma, x, m)
            out["clv_eur"] = model.discounted_clv(
                bgnbd,
                gamma_gamma,
                x,
                t_x,
                t,
                m,
                months=months,
                monthly_discount_rate=monthly_discount,
            )
            yield out

    return predict


def run(
    the_lake: Lake,
    orders: DataFrame,
    *,
    as_of: date | None = None,
    horizon_days: int = DEFAULTS.clv_horizon_days,
    months: int = DEFAULTS.clv_months,
    monthly_discount: float = DEFAULTS.monthly_discount,
    fit_sample: int = DEFAULTS.clv_fit_sample,
    progress: Progress = quiet,
) -> JobReport:
    """Fit, score every customer and write ``gold/clv``."""
    report = JobReport("clv")
    day, report.rows_in = as_of_day(paid_orders(orders), as_of)
    progress(f"summarising customers as of {day}")
    customers = summary(orders, day).cache()
    try:
        progress("fitting BG/NBD and Gamma-Gamma")
        bgnbd, gamma_gamma, fitted_on = fit(customers, fit_sample=fit_sample)
        progress("scoring every customer")
        predicted = customers.mapInPandas(
            _predictor(bgnbd, gamma_gamma, horizon_days, months, monthly_discount),
            PREDICTION_SCHEMA,
        )
        table = (
            history(orders, day)
            .join(predicted, "customer_id")
            .withColumn(
                "clv_margin_eur",
                F.when(
                    F.col("revenue_eur") > 0,
                    F.col("clv_eur") * F.col("margin_eur") / F.col("revenue_eur"),
                ),
            )
            .withColumn("as_of", F.lit(day))
            .withColumn("horizon_days", F.lit(horizon_days))
        )
        params: dict[str, Any] = {
            "as_of": str(day),
            "bgnbd": {k: float(v) for k, v in asdict(bgnbd).items()},
            "gamma_gamma": {k: float(v) for k, v in asdict(gamma_gamma).items()},
            "fitted_on_customers": fitted_on,
            "horizon_days": horizon_days,
            "months": months,
            "monthly_discount_rate": monthly_discount,
        }
        write_table(table, the_lake, lake.CLV, report, metadata={"ecap.clv": params})
    finally:
        customers.unpersist()
    report.facts["clv as of"] = day.isoformat()
    report.facts["BG/NBD"] = ", ".join(f"{k}={v:.4g}" for k, v in params["bgnbd"].items())
    report.facts["Gamma-Gamma"] = ", ".join(
        f"{k}={v:.4g}" for k, v in params["gamma_gamma"].items()
    )
    return report.done()
