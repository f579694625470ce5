"""An order file a user brings: what is accepted, and how a bad one is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from spark_jobs.cli import app
from spark_jobs.orders_file import OrdersFileError, read_orders_file

pytestmark = pytest.mark.integration


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "orders.csv"
    path.write_text(text)
    return str(path)


def test_a_missing_column_is_named_with_the_columns_found(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = _csv(tmp_path, "customer_id,order_time,total\nc1,2024-01-01,5\n")
    with pytest.raises(
        OrdersFileError,
        match=r"lacks the column\(s\) amount; of ECAP's columns it has customer_id, "
        r"order_time and 1 other column\(s\), not shown",
    ):
        read_orders_file(spark, path)


def test_bad_dates_are_named_with_examples(spark: SparkSession, tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "customer_id,order_time,amount\nc1,yesterday,5\nc2,2024-13-45,5\nc3,2024-01-02,5\n",
    )
    with pytest.raises(OrdersFileError) as caught:
        read_orders_file(spark, path)
    assert "order_time is not a date or time in 2 rows (e.g. 'yesterday', '2024-13-45')" in str(
        caught.value
    )


def test_negative_amounts_are_named_with_advice_on_refunds(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = _csv(tmp_path, "customer_id,order_time,amount\nc1,2024-01-01,-5.00\nc2,2024-01-02,5\n")
    with pytest.raises(OrdersFileError) as caught:
        read_orders_file(spark, path)
    message = str(caught.value)
    assert "amount is negative in 1 row (e.g. '-5.00')" in message
    assert "type=refund" in message


def test_every_problem_of_a_file_is_named_at_once(spark: SparkSession, tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "customer_id,order_time,amount,currency\n"
        ",2024-01-01,5,EUR\n"
        "c2,not a day,5,EUR\n"
        "c3,2024-01-02,abc,EUR\n"
        "c4,2024-01-02,5,XYZ\n",
    )
    with pytest.raises(OrdersFileError) as caught:
        read_orders_file(spark, path)
    lines = str(caught.value).splitlines()[1:]
    assert [line.split(" (e.g.")[0] for line in lines] == [
        "  - customer_id is empty in 1 row",
        "  - order_time is not a date or time in 1 row",
        "  - amount is not a number in 1 row",
        "  - currency is not a currency of the FX table in 1 row",
    ]


def test_an_unknown_file_format_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "orders.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(OrdersFileError, match=r"unknown format '\.xlsx'"):
        read_orders_file(spark, str(path))


def test_times_with_offsets_and_plain_dates_are_read_as_utc(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path,
        "customer_id,order_time,amount\n"
        "c1,2024-03-30T23:30:00-02:00,5\n"
        "c2,2024-03-01,5\n"
        "c3,2024-03-01 10:15:00,5\n",
    )
    events = read_orders_file(spark, path).events
    times = {r["customer_id"]: r["order_time"] for r in events.collect()}
    assert {k: v.replace(tzinfo=UTC) for k, v in times.items()} == {
        "c1": datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
        "c2": datetime(2024, 3, 1, tzinfo=UTC),
        "c3": datetime(2024, 3, 1, 10, 15, tzinfo=UTC),
    }


def test_a_parquet_file_with_typed_columns_is_read(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "Customer_ID": ["c1", "c2"],
                "order_time": pa.array(
                    [datetime(2024, 1, 1, 9, tzinfo=UTC), datetime(2024, 1, 2, 9, tzinfo=UTC)],
                    pa.timestamp("us", tz="UTC"),
                ),
                "amount": [12.5, 7],
            }
        ),
        path,
    )
    events = read_orders_file(spark, str(path)).events.collect()
    assert sorted((r["customer_id"], r["amount"], r["currency"]) for r in events) == [
        ("c1", 12.5, "EUR"),
        ("c2", 7.0, "EUR"),
    ]


def test_the_cli_refuses_a_bad_file_and_writes_nothing(tmp_path: Path) -> None:
    path = _csv(tmp_path, "customer_id,order_time,amount\nc1,2024-01-01,-5\n")
    lake = tmp_path / "lake"

    result = CliRunner().invoke(app, ["rfm", "--orders", path, "--lake", str(lake)])

    assert result.exit_code == 1
    assert "amount is negative in 1 row" in result.output
    assert not lake.exists()
