"""Silver orders: de-duplicated, refunds netted, in euros, with cost and margin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import SparkSession

from spark_jobs import ingest, silver
from spark_jobs import lake as tables
from spark_jobs.lake import Lake
from spark_jobs.orders_file import read_orders_file
from spark_jobs.report import JobReport

if TYPE_CHECKING:  # the fixtures' types, for readers; conftest is not imported at run time
    from conftest import Shop

pytestmark = pytest.mark.integration

# FX (spark_jobs.fx): 1 USD = 0.92 EUR; 1 GBP = 0.92 / 0.79 EUR, so 79 GBP = 92 EUR.
ORDERS_CSV = """\
order_id,customer_id,order_time,amount,currency,type,original_order_id,cost,category,region
o1,c1,2024-03-01T10:00:00Z,100.00,EUR,purchase,,60.00,books,EMEA
o1,c1,2024-03-01T10:00:00Z,100.00,EUR,purchase,,60.00,books,EMEA
o2,c2,2024-03-02 12:00:00,50.00,USD,purchase,,20.00,toys,NA
r1,c2,2024-03-05,10.00,USD,refund,o2,,toys,NA
o3,c3,2024-03-03,79.00,GBP,,,,,
r2,c3,2024-03-06,5.00,GBP,refund,o999,,,
"""


@pytest.fixture(scope="module")
def from_file(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, dict[str, Any]], JobReport]:
    """The silver orders built from ORDERS_CSV, by order id, and the run's report."""
    path = tmp_path_factory.mktemp("silver") / "orders.csv"
    path.write_text(ORDERS_CSV)
    report = JobReport("silver")
    built = silver.build(read_orders_file(spark, str(path)), report)
    orders = {r["order_id"]: r.asDict() for r in built.orders.collect()}
    built.release()
    return orders, report


def test_an_order_id_seen_twice_is_one_order(
    from_file: tuple[dict[str, dict[str, Any]], JobReport],
) -> None:
    orders, report = from_file
    assert sorted(orders) == ["o1", "o2", "o3"]
    assert report.facts["duplicate order ids"] == "1 copies dropped"


def test_amounts_are_converted_to_euros_at_the_fixed_rates(
    from_file: tuple[dict[str, dict[str, Any]], JobReport],
) -> None:
    orders, _ = from_file
    assert orders["o1"]["gross_eur"] == pytest.approx(100.00)
    assert orders["o2"]["gross_eur"] == pytest.approx(46.00)  # 50 USD * 0.92
    assert orders["o3"]["gross_eur"] == pytest.approx(92.00)  # 79 GBP * 0.92 / 0.79


def test_a_refund_is_netted_against_the_purchase_it_names(
    from_file: tuple[dict[str, dict[str, Any]], JobReport],
) -> None:
    orders, _ = from_file
    o2 = orders["o2"]
    assert (o2["refunded_amount"], o2["currency"]) == (10.0, "USD")
    assert o2["refunded_eur"] == pytest.approx(9.20)
    assert o2["net_eur"] == pytest.approx(36.80)
    assert orders["o1"]["net_eur"] == pytest.approx(100.00)


def test_margin_is_net_revenue_minus_the_cost_of_the_goods_kept(
    from_file: tuple[dict[str, dict[str, Any]], JobReport],
) -> None:
    orders, _ = from_file
    assert orders["o1"]["margin_eur"] == pytest.approx(40.00)
    # 20 USD of goods, 80% kept (10 of 50 refunded): 16 USD = 14.72 EUR of cost.
    assert orders["o2"]["cost_eur"] == pytest.approx(14.72)
    assert orders["o2"]["margin_eur"] == pytest.approx(36.80 - 14.72)
    assert (orders["o3"]["cost_eur"], orders["o3"]["margin_eur"]) == (None, None)


def test_a_refund_whose_purchase_is_unknown_is_left_out_and_counted(
    from_file: tuple[dict[str, dict[str, Any]], JobReport],
) -> None:
    orders, report = from_file
    assert orders["o3"]["refunded_eur"] == 0.0
    assert report.facts["refunds without their purchase"] == "1 (left out)"


def test_silver_from_kafka_takes_cost_from_the_latest_product_update(
    spark: SparkSession, catalog_bootstrap: str, shop: Shop, lake: Lake
) -> None:
    shop.product("p1", "2024-02-01T00:00:00+00:00", price=30.0, cost=15.0, currency="EUR")
    shop.product("p2", "2024-02-01T00:00:00+00:00", price=10.0, cost=5.0, currency="USD")
    shop.product("p1", "2024-02-20T00:00:00+00:00", price=30.0, cost=18.0, currency="EUR")
    # t1: 2 x 30 EUR. t2: 30 + 10 EUR, of which 20 EUR refunded by t3.
    shop.purchase("t1", "u1", "2024-03-01T10:00:00+00:00", [("p1", "books", 2, 30.0)])
    shop.purchase(
        "t2", "u2", "2024-03-02T10:00:00+00:00", [("p1", "books", 1, 30.0), ("p2", "toys", 1, 10.0)]
    )
    shop.refund("t3", "u2", "2024-03-04T10:00:00+00:00", of="t2", amount=20.0)
    shop.flush()
    ingest.run(spark, catalog_bootstrap, lake)

    silver.run(spark, lake)

    orders = {r["order_id"]: r for r in silver.read_orders(spark, lake).collect()}
    assert sorted(orders) == ["t1", "t2"]
    assert orders["t1"]["margin_eur"] == pytest.approx(60.0 - 2 * 18.0)
    # t2: 40 EUR, half refunded: net 20; cost (18 EUR + 5 USD * 0.92) * 0.5 = 11.30.
    assert orders["t2"]["net_eur"] == pytest.approx(20.0)
    assert orders["t2"]["cost_eur"] == pytest.approx(11.30)
    lines = silver.read_order_lines(spark, lake).where("order_id = 't2'").collect()
    by_product = {r["product_id"]: (r["net_eur"], r["cost_eur"]) for r in lines}
    assert by_product["p1"] == pytest.approx((15.0, 9.0))  # 3/4 of the list value
    assert by_product["p2"] == pytest.approx((5.0, 2.30))
    assert Path(lake.silver(tables.ORDERS), "order_month=2024-03").is_dir()
