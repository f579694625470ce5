"""The topic catalog matches DESIGN.md's data contracts."""

from __future__ import annotations

from ecap.topics import BY_NAME, CATALOG, dlq

DAY = 86_400_000


def test_catalog_as_designed() -> None:
    got = {
        s.name: (s.partitions, s.config()["retention.ms"], s.cleanup, s.compression)
        for s in CATALOG
        if not s.name.endswith(".dlq")
    }
    assert got == {
        "transactions": (6, str(7 * DAY), "delete", "lz4"),
        "user-events": (12, str(3 * DAY), "delete", "lz4"),
        "product-updates": (3, str(30 * DAY), "compact", "gzip"),
        "customers": (3, "-1", "compact", "gzip"),
        "fraud-alerts": (2, str(90 * DAY), "delete", "gzip"),
        "fraud-rules": (1, "-1", "compact", "gzip"),
        "fraud-labels": (2, str(90 * DAY), "delete", "gzip"),
        "fraud-feedback": (2, str(90 * DAY), "delete", "gzip"),
        "analytics-results": (4, str(14 * DAY), "delete", "gzip"),
    }


def test_every_topic_a_stream_worker_consumes_has_a_dead_letter_topic() -> None:
    dead_letter_topics = sorted(s.name for s in CATALOG if s.name.endswith(".dlq"))
    assert dead_letter_topics == ["fraud-alerts.dlq", "transactions.dlq", "user-events.dlq"]
    assert dlq("transactions") == "transactions.dlq"


def test_names_are_unique() -> None:
    assert len(BY_NAME) == len(CATALOG)


def test_dead_letter_topics_accept_records_larger_than_their_source() -> None:
    assert BY_NAME["transactions.dlq"].config()["max.message.bytes"] == "4194304"
