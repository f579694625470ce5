"""RFM scores and segments, against answers worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from spark_jobs.models import rfm

# customer -> (R, F, M) scores -> segment, each row read off the grid by hand.
SEGMENT_FIXTURE = [
    ("c01", 5, 5, 5, "Champions"),
    ("c02", 5, 4, 3, "Champions"),  # FM = (4 + 3 + 1) // 2 = 4
    ("c03", 4, 5, 4, "Loyal Customers"),  # FM = 5
    ("c04", 3, 4, 4, "Loyal Customers"),
    ("c05", 5, 3, 2, "Potential Loyalists"),  # FM = 3
    ("c06", 4, 2, 2, "Potential Loyalists"),
    ("c07", 5, 1, 1, "New Customers"),
    ("c08", 4, 1, 1, "Promising"),
    ("c09", 3, 3, 3, "Need Attention"),
    ("c10", 3, 2, 1, "About to Sleep"),  # FM = 2
    ("c11", 3, 1, 1, "About to Sleep"),
    ("c12", 2, 4, 3, "At Risk"),  # FM = 4
    ("c13", 1, 3, 3, "At Risk"),
    ("c14", 1, 5, 5, "Cannot Lose Them"),
    ("c15", 2, 5, 4, "Cannot Lose Them"),  # FM = 5
    ("c16", 2, 2, 1, "Hibernating"),  # FM = 2
    ("c17", 2, 1, 1, "Hibernating"),
    ("c18", 1, 1, 2, "Lost"),  # FM = 2
    ("c19", 1, 1, 1, "Lost"),
]


@pytest.mark.parametrize(("customer", "r", "f", "m", "expected"), SEGMENT_FIXTURE)
def test_segment_of_scored_customer(customer: str, r: int, f: int, m: int, expected: str) -> None:
    assert rfm.segment(r, rfm.fm_score(f, m)) == expected, customer


def test_fixture_covers_all_eleven_segments() -> None:
    assert {row[-1] for row in SEGMENT_FIXTURE} == set(rfm.SEGMENTS)
    assert len(rfm.SEGMENTS) == 11


def test_every_grid_cell_is_one_of_the_eleven_segments() -> None:
    cells = {rfm.segment(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert cells == set(rfm.SEGMENTS)


def test_fm_score_is_the_mean_with_halves_rounded_up() -> None:
    assert [rfm.fm_score(1, 2), rfm.fm_score(3, 3), rfm.fm_score(4, 5)] == [2, 3, 5]


def test_scores_outside_one_to_five_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"R score must be 1\.\.5"):
        rfm.segment(0, 3)


def test_distinct_values_split_into_quintiles() -> None:
    values = pd.Series([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert rfm.quintile_score(values).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_lower_recency_scores_higher() -> None:
    days = pd.Series([0, 10, 20, 30, 40])
    assert rfm.quintile_score(days, higher_is_better=False).tolist() == [5, 4, 3, 2, 1]


def test_tied_values_share_the_score_of_their_lowest_place() -> None:
    # Six customers with one order: none is strictly better than another one-order customer.
    orders = pd.Series([1, 1, 1, 1, 1, 1, 2, 3, 4, 5])
    # 2 beats 6 -> 1 + 30 // 10 = 4; 3 beats 7 -> 4; 4 beats 8 -> 5; 5 beats 9 -> 5.
    assert rfm.quintile_score(orders).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_scores_do_not_depend_on_row_order() -> None:
    values = pd.Series([5.0, 1.0, 3.0, 3.0, 9.0, 7.0], index=list("abcdef"))
    shuffled = values.loc[list("fdbeca")]
    assert rfm.quintile_score(shuffled).sort_index().equals(rfm.quintile_score(values))


def test_missing_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="missing values"):
        rfm.quintile_score(pd.Series([1.0, None], name="monetary"))


# Raw values of ten customers; the scores below were worked out by hand:
# R by recency (fewer days is better), F by orders, M by spend, each
# 1 + floor(5 * strictly_worse / 10); FM = (F + M + 1) // 2.
RAW_CUSTOMERS = pd.DataFrame(
    {
        "recency_days": [2, 5, 9, 15, 30, 45, 60, 90, 200, 365],
        "frequency": [12, 8, 1, 6, 3, 1, 9, 2, 1, 1],
        "monetary": [1500.0, 900.0, 40.0, 700.0, 300.0, 25.0, 1200.0, 150.0, 60.0, 20.0],
    },
    index=pd.Index(list("ABCDEFGHIJ"), name="customer_id"),
)
EXPECTED_SCORES = {
    #    R  F  M  FM  segment
    "A": (5, 5, 5, 5, "Champions"),
    "B": (5, 4, 4, 4, "Champions"),
    "C": (4, 1, 2, 2, "Potential Loyalists"),
    "D": (4, 4, 4, 4, "Loyal Customers"),
    "E": (3, 3, 3, 3, "Need Attention"),
    "F": (3, 1, 1, 1, "About to Sleep"),
    "G": (2, 5, 5, 5, "Cannot Lose Them"),
    "H": (2, 3, 3, 3, "At Risk"),
    "I": (1, 1, 2, 2, "Lost"),
    "J": (1, 1, 1, 1, "Lost"),
}


def test_raw_customers_get_their_hand_worked_scores_and_segments() -> None:
    scored = rfm.score_rfm(RAW_CUSTOMERS)
    got = {
        customer: (row.r_score, row.f_score, row.m_score, row.fm_score, row.segment)
        for customer, row in scored.iterrows()
    }
    assert got == EXPECTED_SCORES


def test_scoring_needs_the_three_values() -> None:
    with pytest.raises(ValueError, match="monetary"):
        rfm.score_rfm(RAW_CUSTOMERS.drop(columns="monetary"))


ORDERS = pd.DataFrame(
    {
        "customer_id": ["c1", "c1", "c2", "c3", "c3"],
        "order_time": [
            "2024-03-01T09:00:00Z",
            "2024-03-30T10:00:00Z",
            "2024-01-01T23:30:00Z",
            "2024-03-31T12:00:00Z",
            "2024-04-02T08:00:00Z",  # after the as-of day: ignored
        ],
        "amount": [20.0, 10.0, 5.0, 7.5, 99.0],
    }
)


def test_rfm_values_from_orders() -> None:
    values = rfm.rfm_values(ORDERS, "2024-03-31")
    assert values.to_dict("index") == {
        "c1": {"recency_days": 1, "frequency": 2, "monetary": 30.0},
        "c2": {"recency_days": 90, "frequency": 1, "monetary": 5.0},  # Jan 1 -> Mar 31, 2024
        "c3": {"recency_days": 0, "frequency": 1, "monetary": 7.5},
    }


def test_order_days_are_utc_days() -> None:
    # 23:30 at UTC-2 on March 30 is 01:30 UTC on March 31.
    orders = pd.DataFrame(
        {"customer_id": ["c"], "order_time": ["2024-03-30T23:30:00-02:00"], "amount": [1.0]}
    )
    assert rfm.rfm_values(orders, "2024-03-31").loc["c", "recency_days"] == 0
