"""The whole chain from the command line: an order file or Kafka, into every table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from spark_jobs import delta_io, maintain
from spark_jobs.cli import app
from spark_jobs.lake import Lake

if TYPE_CHECKING:  # the fixtures' types, for readers; conftest is not imported at run time
    from conftest import Chained, ReadBack, Shop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SILVER_AND_GOLD = [
    "silver/orders",
    "silver/order_lines",
    "gold/rfm",
    "gold/clv",
    "gold/churn_scores",
    "gold/cohort_retention",
    "gold/daily_revenue",
]


def _versions(the_lake: Lake) -> dict[str, int]:
    return {name: DeltaTable(f"{the_lake.root}/{name}").version() for name in SILVER_AND_GOLD}


def test_all_writes_silver_and_every_gold_table_and_says_where(chained: Chained) -> None:
    output = " ".join(chained.result.output.split())
    assert chained.result.exit_code == 0, chained.result.output
    assert sorted(maintain.tables(chained.lake)) == sorted(SILVER_AND_GOLD)
    for name in SILVER_AND_GOLD:
        assert f"{name} (v0)" in output
    assert chained.lake.root in output


def test_deltalake_reads_back_every_table_the_chain_committed(
    spark: SparkSession, chained: Chained, read_back: ReadBack
) -> None:
    for name in SILVER_AND_GOLD:
        path = f"{chained.lake.root}/{name}"
        assert len(read_back(path)) == delta_io.read_delta(spark, path).count() > 0, name


def test_a_malformed_file_leaves_every_table_as_it_was(chained: Chained, tmp_path: Path) -> None:
    before = _versions(chained.lake)
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,order_time,amount\nc1,2024-02-30,10\n")

    result = CliRunner().invoke(app, ["all", "--orders", str(bad), "--lake", chained.lake.root])

    assert result.exit_code == 1
    assert "order_time is not a date or time in 1 row (e.g. '2024-02-30')" in result.output
    assert _versions(chained.lake) == before


def test_maintain_compacts_every_table_and_keeps_its_rows(
    spark: SparkSession, chained: Chained
) -> None:
    root = chained.lake.root
    counts = {n: delta_io.read_delta(spark, f"{root}/{n}").count() for n in SILVER_AND_GOLD}

    result = CliRunner().invoke(app, ["maintain", "--lake", root, "--retention-hours", "0"])

    assert result.exit_code == 0, result.output
    assert "tables maintained" in result.output
    after = {n: delta_io.read_delta(spark, f"{root}/{n}").count() for n in SILVER_AND_GOLD}
    assert after == counts


def test_schedule_reruns_the_chain_and_a_run_without_new_records_stops_after_ingest(
    catalog_bootstrap: str, shop: Shop, lake: Lake
) -> None:
    for n, user in enumerate(("u1", "u2", "u1"), start=1):
        shop.purchase(f"t{n}", user, f"2024-03-0{n}T10:00:00+00:00", [("p1", "books", 1, 10.0)])
    shop.flush()

    result = CliRunner().invoke(
        app,
        [
            "schedule",
            *("--every", "0.1", "--runs", "2"),
            *("--lake", lake.root, "--bootstrap", catalog_bootstrap),
        ],
    )

    assert result.exit_code == 0, result.output
    first, second = result.output.split("run 2, ")
    assert "gold/rfm (v0)" in first
    assert "skipped:" in first  # three orders: too little history for churn and CLV
    assert "no new records" in second
    assert "silver" not in second
