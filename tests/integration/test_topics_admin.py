"""`ecap topics create` against a real broker: the catalog, idempotently."""

from __future__ import annotations

from ecap.kafka import admin
from ecap.topics import BY_NAME, CATALOG


def test_create_twice_creates_once_then_reports_existing(kafka_bootstrap: str) -> None:
    client = admin.admin_client(kafka_bootstrap)
    first = admin.create_topics(client)
    second = admin.create_topics(client)
    assert set(first.values()) <= {"created", "exists"}
    assert second == {spec.name: "exists" for spec in CATALOG}


def test_created_topics_have_the_catalog_partitions_and_config(kafka_bootstrap: str) -> None:
    client = admin.admin_client(kafka_bootstrap)
    admin.create_topics(client)
    infos = admin.describe_topics(client, [spec.name for spec in CATALOG])
    assert {i.name: i.partitions for i in infos} == {s.name: s.partitions for s in CATALOG}
    transactions = next(i for i in infos if i.name == "transactions")
    assert transactions.config["compression.type"] == "lz4"
    assert transactions.config["retention.ms"] == str(7 * 86_400_000)
    assert BY_NAME["product-updates"].config()["cleanup.policy"] == "compact"


def test_unreachable_broker_gives_advice() -> None:
    try:
        admin.admin_client("127.0.0.1:1", timeout=1)
    except admin.BrokerUnreachable as exc:
        assert "ecap up" in str(exc)
    else:
        raise AssertionError("expected BrokerUnreachable")
