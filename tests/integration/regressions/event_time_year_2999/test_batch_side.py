"""The batch side sets year-2999 and 1970 records aside and says how many: ingest keeps
them in ``bronze/_rejected``, silver leaves such orders out, an order file with them is
refused. Spark local and the real embedded broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ecap import topics
from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.event_time import to_ms
from ecap.kafka import admin
from spark_jobs import delta_io, ingest, silver
from spark_jobs import lake as tables
from spark_jobs.lake import Lake
from spark_jobs.orders_file import OrdersFileError, read_orders_file
from spark_jobs.report import JobReport
from spark_jobs.session import get_spark
from spark_jobs.silver import OrderEvents
from tests.unit.spark_jobs.test_bronze import TRANSACTION

pytestmark = pytest.mark.integration

REPLAYED = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
"""TRANSACTION's event time: a replayed record is stamped with it."""


@pytest.fixture(scope="module")
def spark() -> SparkSession:
    """The tests' Spark session (the same one the spark_jobs tests get, when run together)."""
    return get_spark("ecap-tests", "local[2]", driver_memory="2g")


@pytest.fixture
def bootstrap(tmp_path: Path) -> Iterator[str]:
    entry = broker.start("127.0.0.1", free_port(), tmp_path)
    try:
        admin.create_topics(admin.admin_client(str(entry["address"])))
        yield str(entry["address"])
    finally:
        broker.stop(entry)


def test_ingest_sets_poisoned_event_times_aside_and_counts_them(
    spark: SparkSession, bootstrap: str, tmp_path: Path
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(
        topics.TRANSACTIONS, orjson.dumps(TRANSACTION), b"u1", timestamp=to_ms(REPLAYED)
    )
    for tag, when in (("t2999", "2999-12-31T00:00:00Z"), ("t1970", "1970-01-01T00:00:00Z")):
        poisoned = orjson.dumps({**TRANSACTION, "transaction_id": tag, "event_time": when})
        producer.produce(topics.TRANSACTIONS, poisoned, b"u1")  # stamped now by the producer
    assert producer.flush(10) == 0
    lake = Lake.at(tmp_path / "lake")

    report = ingest.run(spark, bootstrap, lake, tables=[tables.TRANSACTIONS])

    landed = delta_io.read_delta(spark, lake.bronze(tables.TRANSACTIONS)).collect()
    assert [row["transaction_id"] for row in landed] == ["t1"]
    rejected = delta_io.read_delta(spark, lake.bronze(tables.REJECTED)).collect()
    assert sorted(orjson.loads(row["value"])["transaction_id"] for row in rejected) == [
        "t1970",
        "t2999",
    ]
    assert {row["stage"] for row in rejected} == {"validate"}
    assert report.facts["transactions event time out of bounds (set aside)"] == (
        "2 records, in _rejected"
    )


def test_silver_leaves_implausible_orders_out_and_counts_them(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Rows a lake landed before ingest checked event times."""
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,order_time,amount\no1,c1,2024-03-01,10.00\n")
    source = read_orders_file(spark, str(path))
    poisoned = source.events.withColumns(
        {
            "order_id": F.lit("o2999"),
            "order_time": F.lit(datetime(2999, 12, 31, tzinfo=UTC)),
            "_seq": F.lit(99).cast("long"),
        }
    )
    report = JobReport("silver")
    built = silver.build(
        OrderEvents(source.events.unionByName(poisoned), source.lines, source.source), report
    )
    orders = [row["order_id"] for row in built.orders.collect()]
    built.release()

    assert orders == ["o1"]
    assert report.facts["order time out of range (left out)"].startswith(
        "1 order before 1990-01-01 or after "
    )


@pytest.mark.parametrize("when", ["2999-12-31", "1970-01-01"])
def test_an_order_file_with_an_implausible_order_time_is_refused(
    spark: SparkSession, tmp_path: Path, when: str
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(f"customer_id,order_time,amount\nc1,2024-03-01,10.00\nc2,{when},5.00\n")
    with pytest.raises(OrdersFileError) as refused:
        read_orders_file(spark, str(path))
    message = str(refused.value)
    assert "order_time is before 1990-01-01 or after " in message
    assert f"in 1 row (e.g. '{when}')" in message
