"""Predictive customer lifetime value: BG/NBD for repeat purchases, Gamma-Gamma for spend.

The models and their formulas:

- BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative
  to the Pareto/NBD Model", Marketing Science 24(2). While alive, a customer buys at a rate
  lambda ~ Gamma(r, alpha); after each purchase they drop out with probability p ~ Beta(a, b).
- Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer
  Base Analysis", Journal of Marketing Research 42(4), and Fader & Hardie's note "The
  Gamma-Gamma Model of Monetary Value" (2013). Spend per transaction ~ Gamma(p, nu) with
  nu ~ Gamma(q, gamma); spend is assumed independent of purchase frequency.

Both are fitted by maximum likelihood in log-parameter space (the parameters are positive),
with scipy's Nelder-Mead on the summed log-likelihood.

Inputs are the standard per-customer summary (:func:`summary_from_orders`): ``frequency``
(repeat purchase periods), ``recency`` (first to last purchase), ``T`` (first purchase to the
end of observation) and ``monetary_value`` (mean value of the repeat purchases), in one time
unit (days by default; the CDNOW benchmark uses weeks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FloatArray = NDArray[np.float64]

SUMMARY_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
DAYS_PER_MONTH = 365.25 / 12


class FitError(RuntimeError):
    """The likelihood could not be maximised (too little data, or degenerate data)."""


def _array(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


# --- BG/NBD --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaGeoParams:
    """BG/NBD parameters: purchase rate lambda ~ Gamma(r, alpha), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


def bgnbd_log_likelihood(
    params: BetaGeoParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Each customer's log-likelihood (FHL 2005, equation 6).

    B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1), which gives the second term its simple form.
    """
    x, t_x, t = _array(frequency), _array(recency), _array(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + t)
    # The dropped-out-after-last-purchase term exists only for repeat buyers.
    repeat = x > 0
    dropped = np.full_like(x, -np.inf)
    dropped[repeat] = (
        np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    return common + np.logaddexp(alive, dropped)


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    initial: BetaGeoParams = BetaGeoParams(1.0, 1.0, 1.0, 1.0),
) -> BetaGeoParams:
    """Maximum-likelihood BG/NBD parameters for a customer summary."""
    x, t_x, t = _array(frequency), _array(recency), _array(T)
    _check_summary(x, t_x, t)

    def negative_ll(log_params: FloatArray) -> float:
        params = BetaGeoParams(*np.exp(log_params))
        return -float(np.sum(bgnbd_log_likelihood(params, x, t_x, t)))

    start = np.log([initial.r, initial.alpha, initial.a, initial.b])
    return BetaGeoParams(*_maximise(negative_ll, start, "BG/NBD"))


def probability_alive(
    params: BetaGeoParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(still a customer at T | history); 1 for customers with no repeat purchase."""
    x, t_x, t = _array(frequency), _array(recency), _array(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_ratio = np.zeros_like(x)
    repeat = x > 0
    log_ratio[repeat] = (
        np.log(a)
        - np.log(b + x[repeat] - 1)
        + (r + x[repeat]) * np.log((alpha + t[repeat]) / (alpha + t_x[repeat]))
    )
    result: FloatArray = np.where(repeat, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)
    return result


def expected_purchases(
    params: BetaGeoParams,
    horizon: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> FloatArray:
    """Expected purchases in the next ``horizon`` periods given each history (FHL eq. 10)."""
    x, t_x, t = _array(frequency), _array(recency), _array(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = horizon / (alpha + t + horizon)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1)
    second = 1 - ((alpha + t) / (alpha + t + horizon)) ** (r + x) * hyp
    repeat = x > 0
    odds = np.zeros_like(x)
    odds[repeat] = (a / (b + x[repeat] - 1)) * ((alpha + t[repeat]) / (alpha + t_x[repeat])) ** (
        r + x[repeat]
    )
    result: FloatArray = first * second / (1 + odds)
    return result


# --- Gamma-Gamma ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: spend ~ Gamma(p, nu), nu ~ Gamma(q, v) (FHL's gamma is ``v``)."""

    p: float
    q: float
    v: float


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """Each repeat buyer's log-likelihood of their mean spend ``monetary_value`` over
    ``frequency`` transactions."""
    x, m = _array(frequency), _array(monetary_value)
    p, q, v = params.p, params.q, params.v
    result: FloatArray = (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(v + x * m)
    )
    return result


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    *,
    initial: GammaGammaParams | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from repeat buyers (frequency > 0).

    The default start is p = 1, q = 2 and v = the mean spend, which makes the model's mean
    spend ``p * v / (q - 1)`` the observed one. A start that ignores the scale of the money
    (v = 1 for spends around 100) can leave Nelder-Mead on a degenerate ridge (p in the
    hundreds of thousands, q < 1) with a lower likelihood than the true parameters.
    """
    x, m = _array(frequency), _array(monetary_value)
    if x.shape != m.shape:
        raise ValueError("frequency and monetary_value must have the same length")
    repeat = x > 0
    if np.any(m[repeat] <= 0):
        raise ValueError("monetary_value must be positive for customers with repeat purchases")
    x, m = x[repeat], m[repeat]
    if x.size < 2:
        raise FitError("Gamma-Gamma needs at least two customers with repeat purchases")

    def negative_ll(log_params: FloatArray) -> float:
        params = GammaGammaParams(*np.exp(log_params))
        return -float(np.sum(gamma_gamma_log_likelihood(params, x, m)))

    if initial is None:
        initial = GammaGammaParams(1.0, 2.0, float(np.mean(m)))
    start = np.log([initial.p, initial.q, initial.v])
    return GammaGammaParams(*_maximise(negative_ll, start, "Gamma-Gamma"))


def expected_average_spend(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """E[spend per transaction | history]: a weighted mean of the population mean and the
    customer's own mean, weighted by how many repeat purchases back it. Needs q > 1."""
    x, m = _array(frequency), _array(monetary_value)
    p, q, v = params.p, params.q, params.v
    if q <= 1:
        raise FitError(f"the Gamma-Gamma mean is infinite for q = {q:.3f} <= 1")
    result: FloatArray = (p * (v + x * m)) / (p * x + q - 1)
    return result


def discounted_clv(
    bgnbd: BetaGeoParams,
    gamma_gamma: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
    periods_per_month: float = DAYS_PER_MONTH,
) -> FloatArray:
    """Expected value of each customer's purchases over the next ``months``, each month's
    value discounted by ``(1 + monthly_discount_rate) ** month``.

    ``periods_per_month`` converts months to the summary's time unit (days by default).
    """
    spend = expected_average_spend(gamma_gamma, frequency, monetary_value)
    value = np.zeros_like(spend)
    previous = np.zeros_like(spend)
    for month in range(1, months + 1):
        cumulative = expected_purchases(bgnbd, month * periods_per_month, frequency, recency, T)
        value += (cumulative - previous) * spend / (1 + monthly_discount_rate) ** month
        previous = cumulative
    return value


# --- fitting helpers -----------------------------------------------------------------------


def _check_summary(x: FloatArray, t_x: FloatArray, t: FloatArray) -> None:
    if not (x.shape == t_x.shape == t.shape):
        raise ValueError("frequency, recency and T must have the same length")
    if x.size < 2:
        raise FitError("BG/NBD needs at least two customers")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > t):
        raise ValueError("need frequency >= 0 and 0 <= recency <= T for every customer")


def _maximise(negative_ll: object, start: FloatArray, model: str) -> FloatArray:
    result = minimize(
        negative_ll,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 40_000},
    )
    if not result.success or not np.isfinite(result.fun):
        raise FitError(f"{model} fit did not converge: {result.message}")
    params: FloatArray = np.exp(result.x)
    return params


# --- summary from orders -------------------------------------------------------------------


def _end_day(observation_end: datetime | date | str) -> pd.Timestamp:
    """The UTC day ``observation_end`` falls on, as a naive midnight timestamp."""
    end = pd.Timestamp(observation_end)
    if end.tzinfo is not None:
        end = end.tz_convert("UTC").tz_localize(None)
    return end.normalize()


def summary_from_orders(
    orders: pd.DataFrame,
    observation_end: datetime | date | str,
    *,
    customer_col: str = "customer_id",
    time_col: str = "order_time",
    amount_col: str = "amount",
    period_days: float = 1.0,
) -> pd.DataFrame:
    """Per-customer ``frequency``, ``recency``, ``T``, ``monetary_value`` (the standard RFM
    summary of Fader, Hardie & Lee), indexed by customer.

    - Orders on the same (UTC) day merge into one purchase, their amounts summed.
    - Orders after ``observation_end`` (a day, inclusive) are ignored.
    - ``frequency`` counts purchase days after the first; ``recency`` is the time from the
      first to the last purchase day, ``T`` from the first purchase day to ``observation_end``,
      both in days divided by ``period_days`` (7 for weeks).
    - ``monetary_value`` is the mean of the repeat purchase days, the first excluded
      (0 for customers without a repeat purchase).
    """
    end_day = _end_day(observation_end)
    times = pd.to_datetime(orders[time_col], utc=True).dt.tz_localize(None)
    days = pd.DataFrame(
        {
            "customer": orders[customer_col].to_numpy(),
            "day": times.dt.normalize().to_numpy(),
            "amount": orders[amount_col].astype("float64").to_numpy(),
        }
    )
    days = days[days["day"] <= end_day]
    per_day = days.groupby(["customer", "day"], sort=True)["amount"].sum().reset_index()
    per_day["rank"] = per_day.groupby("customer").cumcount()
    grouped = per_day.groupby("customer")
    first = grouped["day"].min()
    last = grouped["day"].max()
    repeat = per_day[per_day["rank"] > 0].groupby("customer")["amount"].mean()
    summary = pd.DataFrame(
        {
            "frequency": grouped.size() - 1,
            "recency": (last - first).dt.days / period_days,
            "T": (end_day - first).dt.days / period_days,
        }
    )
    summary["monetary_value"] = repeat.reindex(summary.index).fillna(0.0)
    summary["frequency"] = summary["frequency"].astype("int64")
    summary.index.name = customer_col
    return summary


def spark_summary_from_orders(
    orders: DataFrame,
    observation_end: datetime | date | str,
    *,
    customer_col: str = "customer_id",
    time_col: str = "order_time",
    amount_col: str = "amount",
    period_days: float = 1.0,
) -> DataFrame:
    """:func:`summary_from_orders` on a Spark DataFrame: one row per customer with
    ``customer_col``, ``frequency``, ``recency``, ``T`` and ``monetary_value``.

    Days are UTC days, as long as the session time zone is UTC (``spark_jobs.session``).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    end_day = F.to_date(F.lit(_end_day(observation_end).strftime("%Y-%m-%d")))
    per_day = (
        orders.select(
            F.col(customer_col).alias("customer"),
            F.to_date(F.col(time_col)).alias("day"),
            F.col(amount_col).cast("double").alias("amount"),
        )
        .where(F.col("day") <= end_day)
        .groupBy("customer", "day")
        .agg(F.sum("amount").alias("amount"))
        .withColumn(
            "is_first",
            F.row_number().over(Window.partitionBy("customer").orderBy("day")) == 1,
        )
    )
    return (
        per_day.groupBy("customer")
        .agg(
            (F.count("*") - 1).cast("long").alias("frequency"),
            (F.datediff(F.max("day"), F.min("day")) / F.lit(period_days)).alias("recency"),
            (F.datediff(end_day, F.min("day")) / F.lit(period_days)).alias("T"),
            F.coalesce(F.avg(F.when(~F.col("is_first"), F.col("amount"))), F.lit(0.0)).alias(
                "monetary_value"
            ),
        )
        .withColumnRenamed("customer", customer_col)
    )
