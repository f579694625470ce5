"""Spark ↔ Delta through deltalake: what Spark commits, deltalake reads, and back."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, QueryBuilder
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import delta_io
from spark_jobs.delta_io import DeltaIOError, SchemaEvolutionError

pytestmark = pytest.mark.integration

SCHEMA = "order_id STRING, amount DOUBLE, ts TIMESTAMP, event_date DATE"


def _orders(spark: SparkSession, *rows: tuple[str, float, str]) -> DataFrame:
    """Orders (id, amount, ISO UTC time), partitioned by the UTC day of their time."""
    return spark.createDataFrame(
        [(i, a, datetime.fromisoformat(t), datetime.fromisoformat(t).date()) for i, a, t in rows],
        SCHEMA,
    )


def _deltalake_read(path: Path) -> list[dict[str, object]]:
    """The table as deltalake itself reads it, with its own (DataFusion) engine.

    Not ``DeltaTable.to_pyarrow_table()``: reading through deltalake's pyarrow filesystem
    sometimes aborts the interpreter at exit ("terminate called without an active
    exception", delta-rs issue 2184), which would fail a run whose tests all passed.
    """
    reader = QueryBuilder().register("t", DeltaTable(str(path))).execute("SELECT * FROM t")
    rows: list[dict[str, object]] = pa.table(reader.read_all()).to_pylist()
    return rows


def _deltalake_rows(path: Path) -> list[dict[str, object]]:
    """The rows deltalake reads, sorted by order id."""
    return sorted(_deltalake_read(path), key=lambda row: str(row["order_id"]))


def _spark_ids(df: DataFrame) -> list[str]:
    return sorted(row["order_id"] for row in df.select("order_id").collect())


@pytest.fixture
def table(tmp_path: Path) -> Path:
    return tmp_path / "orders"


def test_deltalake_reads_back_what_spark_committed(spark: SparkSession, table: Path) -> None:
    df = _orders(
        spark,
        ("o1", 10.5, "2024-01-01T10:00:00.123456+00:00"),
        ("o2", 7.0, "2024-01-02T00:00:00+00:00"),
    )
    delta_io.write_delta(df, str(table), partition_by=["event_date"])
    assert _deltalake_rows(table) == [
        {
            "order_id": "o1",
            "amount": 10.5,
            "ts": datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC),
            "event_date": date(2024, 1, 1),
        },
        {
            "order_id": "o2",
            "amount": 7.0,
            "ts": datetime(2024, 1, 2, tzinfo=UTC),
            "event_date": date(2024, 1, 2),
        },
    ]


def test_spark_reads_back_the_snapshot(spark: SparkSession, table: Path) -> None:
    df = _orders(
        spark, ("o1", 10.5, "2024-01-01T10:00:00+00:00"), ("o2", 7.0, "2024-01-02T00:00:00+00:00")
    )
    delta_io.write_delta(df, str(table), partition_by=["event_date"])
    back = delta_io.read_delta(spark, str(table))
    assert back.schema == df.schema
    assert sorted(back.collect()) == sorted(df.collect())


def test_data_files_are_hive_partitioned_under_the_root(spark: SparkSession, table: Path) -> None:
    df = _orders(
        spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00"), ("o2", 2.0, "2024-01-02T10:00:00+00:00")
    )
    delta_io.write_delta(df, str(table), partition_by=["event_date"])
    files = sorted(str(p.relative_to(table)) for p in table.rglob("*.parquet"))
    assert [f.split("/")[0] for f in files] == ["event_date=2024-01-01", "event_date=2024-01-02"]
    assert sorted(p.name for p in table.iterdir()) == [
        "_delta_log",
        "event_date=2024-01-01",
        "event_date=2024-01-02",
    ]


def test_each_file_carries_statistics_from_its_footer(spark: SparkSession, table: Path) -> None:
    df = _orders(
        spark,
        ("o1", 3.0, "2024-01-01T08:00:00.000400+00:00"),
        ("o2", 9.5, "2024-01-01T20:00:00.000400+00:00"),
    )
    delta_io.write_delta(df.coalesce(1), str(table), partition_by=["event_date"])
    (stats,) = pa.table(DeltaTable(str(table)).get_add_actions(flatten=True)).to_pylist()
    assert stats["num_records"] == 2
    assert (stats["min.order_id"], stats["max.order_id"]) == ("o1", "o2")
    assert (stats["min.amount"], stats["max.amount"]) == (3.0, 9.5)
    # Milliseconds, the minimum rounded down and the maximum up, so both still bound the column.
    assert stats["min.ts"] == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert stats["max.ts"] == datetime(2024, 1, 1, 20, 0, 0, 1000, tzinfo=UTC)
    assert stats["null_count.amount"] == 0


def test_recommitting_the_same_batch_commits_nothing(spark: SparkSession, table: Path) -> None:
    df = _orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00"))
    first = delta_io.write_delta(df, str(table), app_id="ingest-orders", app_version=1)
    again = delta_io.write_delta(df, str(table), app_id="ingest-orders", app_version=1)
    assert (first.committed, again.committed) == (True, False)
    assert DeltaTable(str(table)).version() == first.version
    assert [row["order_id"] for row in _deltalake_rows(table)] == ["o1"]


def test_the_next_batch_of_the_same_app_commits(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(
        _orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")),
        str(table),
        app_id="a",
        app_version=1,
    )
    result = delta_io.write_delta(
        _orders(spark, ("o2", 2.0, "2024-01-01T11:00:00+00:00")),
        str(table),
        app_id="a",
        app_version=2,
    )
    assert result.committed
    assert DeltaTable(str(table)).transaction_version("a") == 2
    assert [row["order_id"] for row in _deltalake_rows(table)] == ["o1", "o2"]


def test_commit_metadata_is_stored_with_the_commit(spark: SparkSession, table: Path) -> None:
    offsets = {"transactions": {"0": [0, 12], "1": [0, 9]}}
    delta_io.write_delta(
        _orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")),
        str(table),
        metadata={"ecap.kafka_offsets": offsets},
    )
    delta_io.write_delta(_orders(spark, ("o2", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    assert delta_io.commit_metadata(str(table), "ecap.kafka_offsets") == offsets


def test_time_travel_by_version(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    delta_io.write_delta(_orders(spark, ("o2", 2.0, "2024-01-02T10:00:00+00:00")), str(table))
    assert _spark_ids(delta_io.read_delta(spark, str(table), version=0)) == ["o1"]
    assert _spark_ids(delta_io.read_delta(spark, str(table))) == ["o1", "o2"]


def test_time_travel_by_timestamp(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    delta_io.write_delta(_orders(spark, ("o2", 2.0, "2024-01-02T10:00:00+00:00")), str(table))
    assert _spark_ids(delta_io.read_delta(spark, str(table), as_of=between)) == ["o1"]


def test_time_travel_to_a_missing_version_names_the_range(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    with pytest.raises(DeltaIOError, match="has no version 5: versions run from 0 to 0"):
        delta_io.read_delta(spark, str(table), version=5)


def test_a_new_nullable_column_is_added(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    with_currency = _orders(spark, ("o2", 2.0, "2024-01-01T11:00:00+00:00")).selectExpr(
        "*", "'EUR' AS currency"
    )
    delta_io.write_delta(with_currency, str(table))
    assert [(r["order_id"], r["currency"]) for r in _deltalake_rows(table)] == [
        ("o1", None),
        ("o2", "EUR"),
    ]
    spark_rows = delta_io.read_delta(spark, str(table)).select("order_id", "currency").collect()
    assert sorted(tuple(r) for r in spark_rows) == [("o1", None), ("o2", "EUR")]


def test_a_type_change_is_rejected_naming_the_column(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    as_text = _orders(spark, ("o2", 2.0, "2024-01-01T11:00:00+00:00")).withColumn(
        "amount", F.col("amount").cast("string")
    )
    with pytest.raises(SchemaEvolutionError, match=r"column 'amount' .* from double to string"):
        delta_io.write_delta(as_text, str(table))
    assert DeltaTable(str(table)).version() == 0


def test_a_dropped_column_is_rejected_naming_the_column(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    without_amount = _orders(spark, ("o2", 2.0, "2024-01-01T11:00:00+00:00")).drop("amount")
    with pytest.raises(SchemaEvolutionError, match=r"column 'amount' .* is missing"):
        delta_io.write_delta(without_amount, str(table))


def test_overwrite_replaces_the_rows_and_keeps_history(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    delta_io.write_delta(
        _orders(spark, ("o9", 9.0, "2024-02-01T10:00:00+00:00")), str(table), mode="overwrite"
    )
    assert [row["order_id"] for row in _deltalake_rows(table)] == ["o9"]
    assert _spark_ids(delta_io.read_delta(spark, str(table), version=0)) == ["o1"]


def test_overwrite_schema_replaces_the_schema(spark: SparkSession, table: Path) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    segments = spark.createDataFrame([("c1", "Champions")], "customer_id STRING, segment STRING")
    delta_io.write_delta(segments, str(table), mode="overwrite", overwrite_schema=True)
    assert _deltalake_read(table) == [{"customer_id": "c1", "segment": "Champions"}]


def test_an_empty_table_reads_as_no_rows_with_its_schema(spark: SparkSession, table: Path) -> None:
    empty = _orders(spark).limit(0)
    delta_io.write_delta(empty, str(table), partition_by=["event_date"])
    back = delta_io.read_delta(spark, str(table))
    assert (back.schema, back.count()) == (empty.schema, 0)


def test_partition_values_with_special_characters_round_trip(
    spark: SparkSession, table: Path
) -> None:
    regions = spark.createDataFrame(
        [(1, "Île-de-France"), (2, "a b:c/d=e%f"), (3, None)], "n INT, region STRING"
    )
    delta_io.write_delta(regions, str(table), partition_by=["region"])
    expected = [(1, "Île-de-France"), (2, "a b:c/d=e%f"), (3, None)]
    by_deltalake = _deltalake_read(table)
    assert sorted((r["n"], r["region"]) for r in by_deltalake) == expected
    by_spark = delta_io.read_delta(spark, str(table)).collect()
    assert sorted((r["n"], r["region"]) for r in by_spark) == expected


def test_optimize_compacts_small_files_and_spark_still_reads_them(
    spark: SparkSession, table: Path
) -> None:
    for i in range(3):
        delta_io.write_delta(
            _orders(spark, (f"o{i}", float(i), "2024-01-01T10:00:00+00:00")),
            str(table),
            partition_by=["event_date"],
        )
    before = sorted(delta_io.read_delta(spark, str(table)).collect())
    assert len(DeltaTable(str(table)).file_uris()) == 3
    delta_io.optimize(str(table))
    assert len(DeltaTable(str(table)).file_uris()) == 1
    assert sorted(delta_io.read_delta(spark, str(table)).collect()) == before


def test_vacuum_deletes_files_no_longer_in_the_table(spark: SparkSession, table: Path) -> None:
    for i in range(2):
        delta_io.write_delta(
            _orders(spark, (f"o{i}", float(i), "2024-01-01T10:00:00+00:00")), str(table)
        )
    delta_io.optimize(str(table))
    deleted = delta_io.vacuum(str(table), retention_hours=0)
    assert len(deleted) == 2
    assert len(list(table.rglob("*.parquet"))) == 1
    assert _spark_ids(delta_io.read_delta(spark, str(table))) == ["o0", "o1"]


def test_vacuum_deletes_files_an_interrupted_write_left_behind(
    spark: SparkSession, table: Path
) -> None:
    delta_io.write_delta(_orders(spark, ("o1", 1.0, "2024-01-01T10:00:00+00:00")), str(table))
    # A file moved into place by a write that died before its commit, eight days ago.
    orphan = table / "part-00000-orphan.c000.snappy.parquet"
    pq.write_table(pa.table({"order_id": ["lost"]}), orphan)
    eight_days_ago = time.time() - 8 * 24 * 3600
    os.utime(orphan, (eight_days_ago, eight_days_ago))
    assert delta_io.vacuum(str(table)) == [orphan.name]
    assert not orphan.exists()


def test_reading_a_missing_table_says_so(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(DeltaIOError, match="no Delta table at"):
        delta_io.read_delta(spark, str(tmp_path / "nothing"))
