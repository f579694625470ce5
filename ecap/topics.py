"""The topic catalog: every topic ECAP reads or writes, with its configuration.

This is the one place a topic name is spelled. Agents, the generator and the Spark
ingest import the constants below; ``ecap topics create`` creates exactly this catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic as ECAP expects it to exist on the broker."""

    name: str
    partitions: int
    retention_days: int | None
    cleanup: str
    compression: str
    key: str
    purpose: str
    extra: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Kafka topic configuration entries for this topic."""
        retention = "-1" if self.retention_days is None else str(self.retention_days * DAY_MS)
        return {
            "cleanup.policy": self.cleanup,
            "compression.type": self.compression,
            "retention.ms": retention,
            **self.extra,
        }


TRANSACTIONS = "transactions"
USER_EVENTS = "user-events"
PRODUCT_UPDATES = "product-updates"
CUSTOMERS = "customers"
FRAUD_ALERTS = "fraud-alerts"
FRAUD_RULES = "fraud-rules"
FRAUD_LABELS = "fraud-labels"
FRAUD_FEEDBACK = "fraud-feedback"
ANALYTICS_RESULTS = "analytics-results"

DEAD_LETTERED = (TRANSACTIONS, USER_EVENTS, FRAUD_ALERTS)
"""Every topic with a dead-letter topic ``<name>.dlq``: the topics a stream worker consumes
(``ecap.workers``), each of which dead-letters a record it cannot use.

``product-updates`` and ``customers`` have no stream consumer, so no dead-letter topic:
only the batch ingest reads them, and it keeps a record that fails its contract in the
``bronze/_rejected`` table (``spark_jobs.bronze``)."""


def dlq(topic: str) -> str:
    """Name of the dead-letter topic of a topic of :data:`DEAD_LETTERED`."""
    return f"{topic}.dlq"


_BASE = (
    TopicSpec(TRANSACTIONS, 6, 7, "delete", "lz4", "user_id", "Purchases and refunds."),
    TopicSpec(USER_EVENTS, 12, 3, "delete", "lz4", "session_id", "Clickstream: 14 event types."),
    TopicSpec(PRODUCT_UPDATES, 3, 30, "compact", "gzip", "product_id", "Product state."),
    TopicSpec(CUSTOMERS, 3, None, "compact", "gzip", "customer_id", "Customer profiles."),
    TopicSpec(FRAUD_ALERTS, 2, 90, "delete", "gzip", "user_id", "One alert per transaction."),
    TopicSpec(FRAUD_RULES, 1, None, "compact", "gzip", "rule_set", "The live fraud rule set."),
    TopicSpec(FRAUD_LABELS, 2, 90, "delete", "gzip", "transaction_id", "Generator ground truth."),
    TopicSpec(FRAUD_FEEDBACK, 2, 90, "delete", "gzip", "transaction_id", "Investigator verdicts."),
    TopicSpec(ANALYTICS_RESULTS, 4, 14, "delete", "gzip", "metric", "KPI windows."),
)

CATALOG: tuple[TopicSpec, ...] = _BASE + tuple(
    TopicSpec(
        dlq(name),
        1,
        30,
        "delete",
        "gzip",
        "source key",
        f"Dead letters of {name}.",
        # A dead letter carries the rejected record base64-encoded, so it can be larger
        # than the 1 MB the source topic accepts.
        {"max.message.bytes": str(4 * 1024 * 1024)},
    )
    for name in DEAD_LETTERED
)
"""All topics, sources first, then outputs, then dead-letter topics."""

BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in CATALOG}
