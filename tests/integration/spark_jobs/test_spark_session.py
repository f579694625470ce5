"""The shared SparkSession writes what Delta and the models expect."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration


def test_parquet_timestamps_are_utc_microseconds(spark: SparkSession, tmp_path: Path) -> None:
    df = spark.sql("SELECT TIMESTAMP '2024-01-01 10:00:00.123456' AS ts")
    df.coalesce(1).write.parquet(str(tmp_path / "out"))
    (file,) = (tmp_path / "out").glob("*.parquet")
    logical = str(pq.read_metadata(file).schema.column(0).logical_type)
    assert "isAdjustedToUTC=true" in logical
    assert "timeUnit=microseconds" in logical


def test_days_are_utc_days(spark: SparkSession) -> None:
    # 23:30 at UTC-2 on January 1 is 01:30 UTC on January 2.
    row = spark.sql("SELECT to_date(TIMESTAMP '2024-01-01 23:30:00-02:00') AS day").first()
    assert row is not None
    assert str(row["day"]) == "2024-01-02"


def _interpreter(_: int) -> str:
    return sys.executable


def test_python_workers_run_the_project_interpreter(spark: SparkSession) -> None:
    workers = spark.sparkContext.parallelize([0, 1], 2).map(_interpreter).collect()
    assert workers == [sys.executable, sys.executable]


def test_local_shuffles_use_two_partitions_per_core(spark: SparkSession) -> None:
    assert int(spark.conf.get("spark.sql.shuffle.partitions") or 0) == 2 * (os.cpu_count() or 1)
