"""BG/NBD and Gamma-Gamma: the published CDNOW fits, and formulas checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spark_jobs.models import clv

# The CDNOW calibration period: the first 39 weeks of 1997, in weeks.
CDNOW_END = "1997-09-30"
WEEK = 7.0


@pytest.fixture(scope="module")
def cdnow_summary(cdnow_orders: pd.DataFrame) -> pd.DataFrame:
    return clv.summary_from_orders(cdnow_orders, CDNOW_END, period_days=WEEK)


def test_cdnow_summary_matches_the_published_summary(
    cdnow_orders: pd.DataFrame,
    cdnow_summary: pd.DataFrame,
    cdnow_reference_summary: pd.DataFrame,
) -> None:
    index_of = cdnow_orders.groupby("customer_id")["customer_index"].first()
    ours = cdnow_summary.set_axis(index_of.loc[cdnow_summary.index].to_numpy()).sort_index()
    ref = cdnow_reference_summary.loc[ours.index]
    assert (ours["frequency"] == ref["x"]).all()
    assert np.allclose(ours["recency"].round(2), ref["t_x"])
    assert np.allclose(ours["T"].round(2), ref["T"])
    assert np.allclose(ours["monetary_value"], ref["zbar"], atol=0.005)


def test_bgnbd_fit_reproduces_the_published_cdnow_parameters(
    cdnow_summary: pd.DataFrame,
) -> None:
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426.
    params = clv.fit_bgnbd(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    fitted = [round(v, 3) for v in (params.r, params.alpha, params.a, params.b)]
    assert fitted == [0.243, 4.414, 0.793, 2.426]


def test_gamma_gamma_fit_reproduces_the_published_cdnow_parameters(
    cdnow_reference_summary: pd.DataFrame,
) -> None:
    # lifetimes' documentation, fitted on the repeat buyers of this summary:
    # p = 6.25, q = 3.74, v = 15.45.
    params = clv.fit_gamma_gamma(cdnow_reference_summary["x"], cdnow_reference_summary["zbar"])
    assert [round(v, 2) for v in (params.p, params.q, params.v)] == [6.25, 3.74, 15.45]


# Hand-checkable parameters: with r = a + b - 1 the Gauss hypergeometric function in
# E[Y(t)] reduces to 2F1(r+x, b+x; r+x; z) = (1 - z) ** -(b + x).
SIMPLE = clv.BetaGeoParams(r=2.0, alpha=1.0, a=2.0, b=1.0)
UNIT = clv.BetaGeoParams(r=1.0, alpha=1.0, a=1.0, b=1.0)


def test_bgnbd_likelihood_by_hand() -> None:
    # r = alpha = 1, a = 2, b = 1 (FHL 2005, eq. 6).
    # x = 0, T = 1: B(2,1)/B(2,1) * 1/(1 + 1) = 1/2.
    # x = 1, t_x = 1, T = 2: B(2,2)/B(2,1) / 3**2 + B(3,1)/B(2,1) / 2**2
    #   = (1/6)/(1/2)/9 + (1/3)/(1/2)/4 = 1/27 + 1/6 = 11/54.
    params = clv.BetaGeoParams(r=1.0, alpha=1.0, a=2.0, b=1.0)
    ll = clv.bgnbd_log_likelihood(params, [0, 1], [0, 1], [1, 2])
    assert np.allclose(np.exp(ll), [1 / 2, 11 / 54])


def test_probability_alive_by_hand() -> None:
    # x = 1, t_x = 1, T = 2: 1 / (1 + a/(b+x-1) * ((alpha+T)/(alpha+t_x))**(r+x)) = 1/3.25.
    alive = clv.probability_alive(UNIT, [0, 1], [0, 1], [5, 2])
    assert np.allclose(alive, [1.0, 1 / 3.25])


def test_expected_purchases_by_hand() -> None:
    # Horizon 2, T = 1, so z = 2 / (1 + 1 + 2) = 1/2.
    # x = 0: (a+b-1)/(a-1) * (1 - (2/4)**2 * 2**1) = 2 * 0.5 = 1.
    # x = 1, t_x = 1: 3 * (1 - (2/4)**3 * 2**2) / (1 + 2/1 * 1**3) = 1.5 / 3 = 0.5.
    expected = clv.expected_purchases(SIMPLE, 2.0, [0, 1], [0, 1], [1, 1])
    assert np.allclose(expected, [1.0, 0.5])


GG = clv.GammaGammaParams(p=2.0, q=3.0, v=10.0)


def test_expected_average_spend_by_hand() -> None:
    # No repeat purchase: the population mean p*v/(q-1) = 10.
    # Two at 20 on average: p*(v + x*m)/(p*x + q - 1) = 2 * 50 / 6.
    spend = clv.expected_average_spend(GG, [0, 2], [0.0, 20.0])
    assert np.allclose(spend, [10.0, 100 / 6])


def test_discounted_clv_by_hand() -> None:
    # Two periods a month. x = 0, T = 1: E[Y(2)] = 1 (above) and E[Y(4)] = 2 * (1 - (2/6)**2 * 3)
    # = 4/3, so month 1 brings 1 purchase and month 2 brings 1/3, each worth 10, discounted
    # at 25% a month: 10/1.25 + (10/3)/1.25**2.
    value = clv.discounted_clv(
        SIMPLE, GG, [0], [0], [1], [0.0], months=2, monthly_discount_rate=0.25, periods_per_month=2
    )
    assert np.allclose(value, [10 / 1.25 + (10 / 3) / 1.25**2])


def test_gamma_gamma_needs_positive_spend_from_repeat_buyers() -> None:
    with pytest.raises(ValueError, match="monetary_value must be positive"):
        clv.fit_gamma_gamma([1, 2, 0], [10.0, -5.0, 0.0])


def test_bgnbd_rejects_recency_beyond_T() -> None:
    with pytest.raises(ValueError, match="recency <= T"):
        clv.fit_bgnbd([1, 2], [5.0, 3.0], [4.0, 10.0])


# Orders worked by hand, observation ending 2024-01-31.
ORDERS = pd.DataFrame(
    {
        "customer_id": ["a", "a", "a", "a", "b", "c", "c", "d", "d"],
        "order_time": pd.to_datetime(
            [
                "2024-01-01 10:00",
                "2024-01-01 18:00",  # same day as the first: one purchase of 15
                "2024-01-05 09:00",
                "2024-01-11 12:00",
                "2024-01-20 08:00",
                "2024-01-10 08:00",
                "2024-01-10 20:00",
                "2024-01-25 12:00",
                "2024-02-03 12:00",  # after the observation end
            ],
            utc=True,
        ),
        "amount": [10.0, 5.0, 20.0, 40.0, 100.0, 8.0, 2.0, 50.0, 70.0],
    }
)


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return clv.summary_from_orders(ORDERS, "2024-01-31")


def test_summary_frequency_counts_repeat_purchase_days(summary: pd.DataFrame) -> None:
    assert summary["frequency"].to_dict() == {"a": 2, "b": 0, "c": 0, "d": 0}


def test_summary_recency_and_T_in_days(summary: pd.DataFrame) -> None:
    assert summary.loc["a", ["recency", "T"]].tolist() == [10.0, 30.0]
    assert summary.loc["d", ["recency", "T"]].tolist() == [0.0, 6.0]


def test_summary_monetary_value_excludes_the_first_purchase(summary: pd.DataFrame) -> None:
    assert summary["monetary_value"].to_dict() == {"a": 30.0, "b": 0.0, "c": 0.0, "d": 0.0}


def test_summary_in_weeks() -> None:
    weekly = clv.summary_from_orders(ORDERS, "2024-01-31", period_days=7)
    assert np.allclose(weekly.loc["a", ["recency", "T"]].tolist(), [10 / 7, 30 / 7])


def test_gamma_gamma_recovers_the_parameters_of_spends_in_the_hundreds() -> None:
    # Mean spends around 100 (euros, not CDNOW's dollars around 35): a start that ignores
    # the scale of the money used to end on a ridge with p in the hundreds of thousands.
    rng = np.random.default_rng(11)
    n = 20_000
    nu = rng.gamma(4.0, 1 / 30.0, n)  # q = 4, v = 30
    repeats = 1 + rng.poisson(3.0, n)
    spends = [rng.gamma(6.0, 1 / nu_i, x).mean() for nu_i, x in zip(nu, repeats, strict=True)]
    fitted = clv.fit_gamma_gamma(repeats, spends)
    assert fitted.p == pytest.approx(6.0, rel=0.1)
    assert fitted.q == pytest.approx(4.0, rel=0.1)
    assert fitted.v == pytest.approx(30.0, rel=0.15)
