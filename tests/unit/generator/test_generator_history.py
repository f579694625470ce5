"""The order history: heterogeneous customers who churn, seasonality, refunds."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ecap.currency import FX_PER_USD
from ecap.events import Transaction, decode
from ecap.generator import population
from ecap.generator.geography import CITIES
from ecap.generator.history import COLUMNS, kafka_records, to_table
from ecap.generator.sinks import write_table

DAY = 86_400_000


@pytest.fixture(scope="module")
def table(orders) -> pd.DataFrame:
    return to_table(orders).to_pandas()


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties averaged."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for value in np.unique(score[np.diff(np.sort(score), prepend=np.nan) == 0]):
        ranks[score == value] = ranks[score == value].mean()
    positives = label.sum()
    negatives = len(label) - positives
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def test_the_file_has_the_promised_columns_and_types(table) -> None:
    assert tuple(table.columns) == COLUMNS
    assert str(table["order_time"].dtype) == "datetime64[us, UTC]"
    assert set(table["type"]) == {"purchase", "refund"}
    assert (table["amount"] > 0).all()
    assert table["order_id"].is_unique
    assert table["order_time"].is_monotonic_increasing


def test_orders_fall_inside_the_window(orders, table) -> None:
    end = pd.Timestamp(datetime(2026, 11, 27, 8, tzinfo=UTC))
    assert table["order_time"].max() < end
    assert table["order_time"].min() >= end - pd.Timedelta(days=730)


def test_refunds_are_a_few_percent_and_point_at_an_earlier_purchase(table) -> None:
    purchases = table[table["type"] == "purchase"].set_index("order_id")
    refunds = table[table["type"] == "refund"]
    assert 0.025 < len(refunds) / len(purchases) < 0.045
    original = purchases.loc[refunds["original_order_id"]]
    assert (original["customer_id"].to_numpy() == refunds["customer_id"].to_numpy()).all()
    assert (original["order_time"].to_numpy() < refunds["order_time"].to_numpy()).all()
    assert (original["amount"].to_numpy() >= refunds["amount"].to_numpy()).all()
    assert table.loc[table["type"] == "purchase", "original_order_id"].isna().all()


def test_customers_differ_widely_in_how_often_they_buy(table) -> None:
    per_customer = table[table["type"] == "purchase"].groupby("customer_id").size()
    assert (per_customer == 1).mean() > 0.2
    assert per_customer.quantile(0.99) >= 20


def test_some_customers_stop_buying_for_good_while_others_stay(table) -> None:
    purchases = table[table["type"] == "purchase"]
    end = purchases["order_time"].max()
    early = purchases.groupby("customer_id")["order_time"].agg(["min", "max", "size"])
    regulars = early[(early["size"] >= 4) & (early["min"] < end - pd.Timedelta(days=400))]
    silent = (end - regulars["max"]) > pd.Timedelta(days=180)
    assert 0.2 < silent.mean() < 0.8


def test_black_friday_and_the_run_up_to_christmas_peak_above_ordinary_days(table) -> None:
    purchases = table[table["type"] == "purchase"]
    daily = purchases.groupby(purchases["order_time"].dt.date).size()
    october = daily[[d for d in daily.index if d.year == 2025 and d.month == 10]].median()
    assert daily[datetime(2025, 11, 28).date()] > 2.0 * october
    december = daily[[d for d in daily.index if d.year == 2025 and d.month == 12 and d.day <= 20]]
    assert december.median() > 1.2 * october


def test_customers_spend_at_their_own_level(orders) -> None:
    usd = (
        orders.amount
        / np.array([FX_PER_USD[c.currency] for c in CITIES])[
            orders.population.city[orders.customer]
        ]
    )
    purchase = ~orders.refund
    mean_by_customer = np.bincount(orders.customer[purchase], usd[purchase])
    count = np.bincount(orders.customer[purchase])
    regulars = count >= 5
    observed = mean_by_customer[regulars] / count[regulars]
    expected = orders.population.mean_spend_usd[: len(count)][regulars]
    assert np.corrcoef(observed, expected)[0, 1] > 0.9


def test_recency_predicts_churn_in_the_next_90_days(orders) -> None:
    """Churn is learnable: recency alone ranks next-quarter churners with AUC >= 0.85."""
    end_ms = orders.population.anchor_ms
    cutoff = end_ms - 90 * DAY
    purchase = ~orders.refund
    before = purchase & (orders.time_ms < cutoff)
    after = purchase & (orders.time_ms >= cutoff)
    size = orders.population.size
    last = np.full(size, -1, dtype=np.int64)
    np.maximum.at(last, orders.customer[before], orders.time_ms[before])
    active = last >= 0
    came_back = np.bincount(orders.customer[after], minlength=size) > 0
    recency = (cutoff - last[active]) / DAY
    churned = ~came_back[active]
    assert 0.3 < churned.mean() < 0.9
    assert _auc(recency, churned) >= 0.85


def test_parquet_and_csv_files_read_back(orders, tmp_path) -> None:
    arrow = to_table(orders)
    write_table(arrow, tmp_path / "orders.parquet")
    write_table(arrow, tmp_path / "orders.csv")
    assert pq.read_table(tmp_path / "orders.parquet").equals(arrow)
    csv = pd.read_csv(tmp_path / "orders.csv")
    assert list(csv.columns) == list(COLUMNS)
    assert len(csv) == len(orders)


def test_as_events_the_history_is_full_transactions_with_the_same_ids(orders, table) -> None:
    ids = iter(table["order_id"])
    profiles_seen = set()
    checked = 0
    for record in kafka_records(orders):
        if record.topic == "customers":
            profiles_seen.add(record.key)
        elif record.topic == "transactions":
            tx = decode(Transaction, record.value)
            assert tx.transaction_id == next(ids)
            assert record.key in profiles_seen
            checked += 1
            if checked == 5000:
                break
    assert checked == 5000


def test_the_stream_and_the_history_of_a_seed_share_their_people() -> None:
    from ecap.generator.stream import ANCHOR

    history_people = population.build(5000, 7, ANCHOR, acquisition_days=730)
    stream_people = population.build(2000, 7, ANCHOR, n_prospects=60)
    assert np.array_equal(stream_people.city[:2000], history_people.city[:2000])
    assert np.array_equal(stream_people.signup_ms[:2000], history_people.signup_ms[:2000])
    assert stream_people.customer_id(3) == history_people.customer_id(3)
