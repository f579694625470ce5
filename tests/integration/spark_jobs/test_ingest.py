"""Bronze ingest from a real (embedded) broker into Delta tables read back by deltalake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from ecap import topics
from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.kafka import admin
from spark_jobs import bronze, delta_io, ingest
from spark_jobs import lake as tables
from spark_jobs.lake import Lake

if TYPE_CHECKING:  # the fixtures' types, for readers; conftest is not imported at run time
    from conftest import ReadBack, Shop

pytestmark = pytest.mark.integration


def _ids(spark: SparkSession, path: str, column: str = "transaction_id") -> list[str]:
    return sorted(r[column] for r in delta_io.read_delta(spark, path).select(column).collect())


def _rows(spark: SparkSession, path: str, key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r.asDict() for r in delta_io.read_delta(spark, path).collect()}


def test_running_ingest_twice_writes_each_record_once(
    spark: SparkSession, catalog_bootstrap: str, shop: Shop, lake: Lake
) -> None:
    for n in (1, 2, 3):
        shop.purchase(f"t{n}", "u1", f"2024-03-0{n}T10:00:00+00:00", [("p1", "books", 1, 10.0)])
    shop.flush()
    ingest.run(spark, catalog_bootstrap, lake)
    version = DeltaTable(lake.bronze(tables.TRANSACTIONS)).version()

    again = ingest.run(spark, catalog_bootstrap, lake)

    assert _ids(spark, lake.bronze(tables.TRANSACTIONS)) == ["t1", "t2", "t3"]
    assert again.writes == []
    assert DeltaTable(lake.bronze(tables.TRANSACTIONS)).version() == version


def test_a_second_run_appends_only_new_records_and_leaves_earlier_rows_unchanged(
    spark: SparkSession, catalog_bootstrap: str, shop: Shop, lake: Lake
) -> None:
    path = lake.bronze(tables.TRANSACTIONS)
    shop.purchase("t1", "u1", "2024-03-01T10:00:00+00:00", [("p1", "books", 1, 10.0)])
    shop.purchase("t2", "u2", "2024-03-02T10:00:00+00:00", [("p2", "toys", 2, 5.0)])
    shop.flush()
    ingest.run(spark, catalog_bootstrap, lake)
    first = ingest.last_batch(path, topics.TRANSACTIONS)
    before = _rows(spark, path, "transaction_id")

    shop.purchase("t3", "u1", "2024-03-03T10:00:00+00:00", [("p1", "books", 1, 10.0)])
    shop.flush()
    report = ingest.run(spark, catalog_bootstrap, lake)

    after = _rows(spark, path, "transaction_id")
    assert sorted(after) == ["t1", "t2", "t3"]
    assert {k: after[k] for k in before} == before
    second = ingest.last_batch(path, topics.TRANSACTIONS)
    assert first is not None
    assert second is not None
    assert [r.start for r in second.ranges] == [r.end for r in first.ranges]
    assert report.rows_in == 1


def test_records_that_fail_the_contract_are_kept_with_their_bytes_and_error(
    spark: SparkSession, catalog_bootstrap: str, shop: Shop, lake: Lake
) -> None:
    shop.purchase("t1", "u1", "2024-03-01T10:00:00+00:00", [("p1", "books", 1, 10.0)])
    shop.send(topics.TRANSACTIONS, "u9", b"{not json")
    shop.send(topics.TRANSACTIONS, "u9", b'{"schema_version": 1, "transaction_id": "t9"}')
    shop.flush()

    ingest.run(spark, catalog_bootstrap, lake)

    assert _ids(spark, lake.bronze(tables.TRANSACTIONS)) == ["t1"]
    rejected = sorted(
        delta_io.read_delta(spark, lake.bronze(tables.REJECTED)).collect(),
        key=lambda r: r["offset"],
    )
    assert [(r["topic"], r["key"], r["value"], r["stage"]) for r in rejected] == [
        ("transactions", b"u9", b"{not json", "decode"),
        ("transactions", b"u9", b'{"schema_version": 1, "transaction_id": "t9"}', "validate"),
    ]
    assert rejected[0]["error"].startswith("not valid JSON")
    assert "invalid Transaction: event_time: Field required" in rejected[1]["error"]


def test_compacted_topics_keep_the_latest_value_per_key(
    spark: SparkSession, catalog_bootstrap: str, shop: Shop, lake: Lake
) -> None:
    shop.product("p1", "2024-03-01T10:00:00+00:00", price=10.0, cost=6.0, currency="EUR")
    shop.product("p2", "2024-03-01T10:00:00+00:00", price=20.0, cost=9.0, currency="USD")
    shop.flush()
    ingest.run(spark, catalog_bootstrap, lake)
    shop.product("p1", "2024-03-05T10:00:00+00:00", price=12.0, cost=6.5, currency="EUR")
    shop.flush()

    ingest.run(spark, catalog_bootstrap, lake)

    products = _rows(spark, lake.bronze(tables.PRODUCT_UPDATES), "product_id")
    assert {k: (v["price"], v["cost"], v["currency"]) for k, v in products.items()} == {
        "p1": (12.0, 6.5, "EUR"),
        "p2": (20.0, 9.0, "USD"),
    }


def test_a_batch_interrupted_between_two_tables_is_finished_by_the_next_run(
    spark: SparkSession, catalog_bootstrap: str, shop: Shop, lake: Lake
) -> None:
    shop.purchase("t1", "u1", "2024-03-01T10:00:00+00:00", [("p1", "books", 1, 10.0)])
    shop.flush()
    ingest.run(spark, catalog_bootstrap, lake)
    shop.purchase(
        "t2", "u1", "2024-03-02T10:00:00+00:00", [("p1", "books", 1, 10.0), ("p2", "toys", 3, 2.5)]
    )
    shop.flush()
    # A run that died after committing batch 2 to transactions, before transaction_items.
    table = bronze.TABLES[tables.TRANSACTIONS]
    paths = ingest.topic_tables(lake, table)
    batch, _ = ingest.plan_batch(catalog_bootstrap, topics.TRANSACTIONS, paths)
    assert batch is not None
    decoded = ingest.decoded_records(spark, catalog_bootstrap, table, batch, datetime.now(UTC))
    delta_io.write_delta(
        ingest.table_rows(decoded, table),
        paths[0],
        partition_by=["event_date"],
        app_id=ingest.app_id(topics.TRANSACTIONS),
        app_version=batch.number,
        metadata={ingest.metadata_key(topics.TRANSACTIONS): batch.to_json()},
    )

    ingest.run(spark, catalog_bootstrap, lake)

    assert _ids(spark, lake.bronze(tables.TRANSACTIONS)) == ["t1", "t2"]
    items = delta_io.read_delta(spark, lake.bronze(tables.TRANSACTION_ITEMS)).collect()
    assert sorted((r["transaction_id"], r["line_no"], r["line_amount"]) for r in items) == [
        ("t1", 0, 10.0),
        ("t2", 0, 10.0),
        ("t2", 1, 7.5),
    ]


def test_time_travel_returns_the_table_as_the_first_run_left_it(
    spark: SparkSession, catalog_bootstrap: str, shop: Shop, lake: Lake
) -> None:
    path = lake.bronze(tables.TRANSACTIONS)
    shop.purchase("t1", "u1", "2024-03-01T10:00:00+00:00", [("p1", "books", 1, 10.0)])
    shop.flush()
    ingest.run(spark, catalog_bootstrap, lake)
    between = datetime.now(UTC)
    shop.purchase("t2", "u1", "2024-03-02T10:00:00+00:00", [("p1", "books", 1, 10.0)])
    shop.flush()
    ingest.run(spark, catalog_bootstrap, lake)

    first_version = delta_io.read_delta(spark, path, version=0)
    as_of_between = delta_io.read_delta(spark, path, as_of=between)

    assert [r["transaction_id"] for r in first_version.collect()] == ["t1"]
    assert [r["transaction_id"] for r in as_of_between.collect()] == ["t1"]
    assert _ids(spark, path) == ["t1", "t2"]


def test_a_recreated_topic_is_named_and_a_restart_reads_it_from_its_first_offset(
    spark: SparkSession, tmp_path: Path, open_shop: type[Shop], lake: Lake
) -> None:
    def broker_with(*ids: str) -> dict[str, Any]:
        home = tmp_path / f"kafka-{ids[0]}"
        home.mkdir()
        entry = broker.start("127.0.0.1", free_port(), home)
        admin.create_topics(admin.admin_client(str(entry["address"])))
        shop = open_shop(str(entry["address"]))
        for n, transaction_id in enumerate(ids, start=1):
            shop.purchase(
                transaction_id, "u1", f"2024-03-0{n}T10:00:00+00:00", [("p1", "books", 1, 1.0)]
            )
        shop.flush()
        shop.close()
        return entry

    before = broker_with("t1", "t2")
    ingest.run(spark, str(before["address"]), lake, tables=[tables.TRANSACTIONS])
    broker.stop(before)
    after = broker_with("t3")  # a restarted embedded broker: an empty log, offsets from 0
    try:
        with pytest.raises(ingest.IngestError, match="the topic was recreated"):
            ingest.run(spark, str(after["address"]), lake, tables=[tables.TRANSACTIONS])

        ingest.run(
            spark,
            str(after["address"]),
            lake,
            tables=[tables.TRANSACTIONS],
            restart_topics=[topics.TRANSACTIONS],
        )
    finally:
        broker.stop(after)

    assert _ids(spark, lake.bronze(tables.TRANSACTIONS)) == ["t1", "t2", "t3"]


# --- one of everything, landed once for the tests below -------------------------------------


@pytest.fixture(scope="module")
def landed(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, open_shop: type[Shop]
) -> Iterator[Lake]:
    """A lake after one ingest of one event of each kind, plus a record that fails."""
    home = tmp_path_factory.mktemp("landed")
    entry = broker.start("127.0.0.1", free_port(), home)
    try:
        address = str(entry["address"])
        admin.create_topics(admin.admin_client(address))
        shop = open_shop(address)
        shop.purchase(
            "t1",
            "u1",
            "2024-03-01T23:30:00+00:00",
            [("p1", "books", 2, 7.5), ("p2", "toys", 1, 30.0)],
        )
        shop.page_view("e1", "s1", "2024-03-01T23:00:00+00:00")
        shop.product("p1", "2024-02-01T00:00:00+00:00", price=7.5, cost=4.0, currency="EUR")
        shop.customer("u1", "2024-02-15T08:00:00+00:00")
        shop.alert("a1", "t1", "2024-03-01T23:30:01+00:00")
        shop.send(topics.CUSTOMERS, "u2", b"[]")
        shop.flush()
        shop.close()
        the_lake = Lake.at(Path(home) / "lake")
        ingest.run(spark, address, the_lake)
        yield the_lake
    finally:
        broker.stop(entry)


def test_every_topic_lands_flattened_in_its_table_partitioned_by_event_date(
    spark: SparkSession, landed: Lake
) -> None:
    def one(name: str) -> dict[str, Any]:
        rows = delta_io.read_delta(spark, landed.bronze(name)).collect()
        assert len(rows) == 1, name
        return rows[0].asDict()

    transaction = one(tables.TRANSACTIONS)
    assert (transaction["event_date"], transaction["category"], transaction["city"]) == (
        date(2024, 3, 1),
        "toys",  # the line worth most: 30.0 against 15.0
        "Paris",
    )
    view = one(tables.USER_EVENTS)
    assert (view["event_type"], view["product_id"], view["region"]) == (
        "product_view",
        "p1",
        "EMEA",
    )
    assert one(tables.PRODUCT_UPDATES)["cost"] == 4.0
    assert one(tables.CUSTOMERS)["segment"] == "new"
    assert one(tables.FRAUD_ALERTS)["reason_codes"] == ["velocity", "new_device"]
    items = delta_io.read_delta(spark, landed.bronze(tables.TRANSACTION_ITEMS)).collect()
    assert sorted((r["product_id"], r["quantity"], r["line_amount"]) for r in items) == [
        ("p1", 2, 15.0),
        ("p2", 1, 30.0),
    ]
    folders = sorted(p.name for p in Path(landed.bronze(tables.TRANSACTIONS)).iterdir())
    assert folders == ["_delta_log", "event_date=2024-03-01"]


def test_a_record_of_another_topic_that_fails_is_kept_under_its_topic(
    spark: SparkSession, landed: Lake
) -> None:
    rejected = delta_io.read_delta(spark, landed.bronze(tables.REJECTED)).collect()
    assert [(r["topic"], r["value"], r["stage"]) for r in rejected] == [
        ("customers", b"[]", "decode")
    ]


def test_deltalake_reads_back_every_bronze_table_spark_committed(
    spark: SparkSession, landed: Lake, read_back: ReadBack
) -> None:
    names = [*bronze.TABLES, tables.TRANSACTION_ITEMS, tables.REJECTED]
    for name in names:
        path = landed.bronze(name)
        spark_rows = delta_io.read_delta(spark, path).count()
        assert len(read_back(path)) == spark_rows > 0, name
