"""RFM: recency, frequency and monetary scores 1-5, and the 11 classic customer segments.

**Values** (:func:`rfm_values`), per customer, as of a day: ``recency_days`` since the last
order, ``frequency`` (number of orders) and ``monetary`` (total spend).

**Scores** (:func:`quintile_score`): 5 is best on every axis (most recent, most frequent,
highest spend). A customer's score is one plus five times the share of customers strictly
worse on that axis, rounded down::

    score = 1 + floor(5 * (number of customers strictly worse) / (number of customers))

With distinct values this cuts the customers into quintiles. Equal values always get equal
scores, whatever the row order, and a tie takes the score of the lowest place it covers: if
most customers ordered once, they all get F = 1 rather than an arbitrary spread.

**Segments** (:func:`segment`) come from R and the combined FM score, the rounded-up mean of
F and M (``fm = (f + m + 1) // 2``), on the widely used 5-by-5 recency-versus-frequency grid,
with FM on the frequency axis and its least recent, least valuable corner split into Lost
(R = 1) and Hibernating (R = 2)::

    FM \\ R   1   2   3   4   5
       5     CL  CL  LC  LC  CH     CH Champions            NA Need Attention
       4     AR  AR  LC  LC  CH     LC Loyal Customers      AS About to Sleep
       3     AR  AR  NA  PL  PL     PL Potential Loyalists  AR At Risk
       2     LO  HI  AS  PL  PL     NC New Customers        CL Cannot Lose Them
       1     LO  HI  AS  PR  NC     PR Promising            HI Hibernating
                                                            LO Lost
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

CHAMPIONS = "Champions"
LOYAL_CUSTOMERS = "Loyal Customers"
POTENTIAL_LOYALISTS = "Potential Loyalists"
NEW_CUSTOMERS = "New Customers"
PROMISING = "Promising"
NEED_ATTENTION = "Need Attention"
ABOUT_TO_SLEEP = "About to Sleep"
AT_RISK = "At Risk"
CANNOT_LOSE_THEM = "Cannot Lose Them"
HIBERNATING = "Hibernating"
LOST = "Lost"

SEGMENTS = (
    CHAMPIONS,
    LOYAL_CUSTOMERS,
    POTENTIAL_LOYALISTS,
    NEW_CUSTOMERS,
    PROMISING,
    NEED_ATTENTION,
    ABOUT_TO_SLEEP,
    AT_RISK,
    CANNOT_LOSE_THEM,
    HIBERNATING,
    LOST,
)

# FM score -> the segment for R = 1, 2, 3, 4, 5 (the grid in the module docstring).
_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: (CANNOT_LOSE_THEM, CANNOT_LOSE_THEM, LOYAL_CUSTOMERS, LOYAL_CUSTOMERS, CHAMPIONS),
    4: (AT_RISK, AT_RISK, LOYAL_CUSTOMERS, LOYAL_CUSTOMERS, CHAMPIONS),
    3: (AT_RISK, AT_RISK, NEED_ATTENTION, POTENTIAL_LOYALISTS, POTENTIAL_LOYALISTS),
    2: (LOST, HIBERNATING, ABOUT_TO_SLEEP, POTENTIAL_LOYALISTS, POTENTIAL_LOYALISTS),
    1: (LOST, HIBERNATING, ABOUT_TO_SLEEP, PROMISING, NEW_CUSTOMERS),
}

_SCORES = range(1, 6)


def _check_score(name: str, value: int) -> None:
    if value not in _SCORES:
        raise ValueError(f"{name} score must be 1..5, got {value}")


def _combine(f: Any, m: Any) -> Any:
    return (f + m + 1) // 2


def fm_score(f: int, m: int) -> int:
    """The combined frequency-monetary score: the mean of F and M, halves rounded up."""
    _check_score("F", f)
    _check_score("M", m)
    result: int = _combine(f, m)
    return result


def segment(r: int, fm: int) -> str:
    """The segment of a customer with recency score ``r`` and combined FM score ``fm``."""
    _check_score("R", r)
    _check_score("FM", fm)
    return _GRID[fm][r - 1]


def quintile_score(values: pd.Series, *, higher_is_better: bool = True) -> pd.Series:
    """Scores 1-5 for ``values``, 5 for the best fifth (see the module docstring)."""
    if values.isna().any():
        raise ValueError(f"cannot score {values.name!r}: it has missing values")
    goodness = values if higher_is_better else -values
    strictly_worse = goodness.rank(method="min").astype("int64") - 1
    return (1 + (5 * strictly_worse) // len(values)).astype("int64")


def score_rfm(customers: pd.DataFrame) -> pd.DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score``, ``fm_score`` and ``segment`` to a frame of
    ``recency_days``, ``frequency`` and ``monetary`` (one row per customer)."""
    missing = {"recency_days", "frequency", "monetary"} - set(customers.columns)
    if missing:
        raise ValueError(f"RFM scoring needs the columns {sorted(missing)}")
    scored = customers.copy()
    scored["r_score"] = quintile_score(customers["recency_days"], higher_is_better=False)
    scored["f_score"] = quintile_score(customers["frequency"])
    scored["m_score"] = quintile_score(customers["monetary"])
    scored["fm_score"] = _combine(scored["f_score"], scored["m_score"])
    grid = np.array([_GRID[fm] for fm in sorted(_GRID)])  # grid[fm - 1][r - 1]
    scored["segment"] = grid[scored["fm_score"] - 1, scored["r_score"] - 1]
    return scored


def rfm_values(
    orders: pd.DataFrame,
    as_of: datetime | date | str,
    *,
    customer_col: str = "customer_id",
    time_col: str = "order_time",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """Per customer: ``recency_days`` from the last order's (UTC) day to ``as_of``'s day,
    ``frequency`` (orders) and ``monetary`` (their total amount). Orders after ``as_of``'s
    day are ignored."""
    as_of_day = pd.Timestamp(as_of)
    if as_of_day.tzinfo is not None:
        as_of_day = as_of_day.tz_convert("UTC").tz_localize(None)
    as_of_day = as_of_day.normalize()
    days = pd.to_datetime(orders[time_col], utc=True).dt.tz_localize(None).dt.normalize()
    kept = orders.assign(_day=days)[days <= as_of_day]
    grouped = kept.groupby(customer_col)
    values = pd.DataFrame(
        {
            "recency_days": (as_of_day - grouped["_day"].max()).dt.days,
            "frequency": grouped.size(),
            "monetary": grouped[amount_col].sum().astype("float64"),
        }
    )
    return values
