"""Which log a topic is: the id a broker gives a topic when it creates it.

A topic deleted and created again, or created again on a broker that lost its log (the
embedded broker keeps it in memory), gets a new id, while offsets kept from the old log
would still look valid in the new one once it has grown past them. Readers that keep
offsets across restarts compare the id (``tables.kpi_ledger_topic``).
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient

NO_ID = "AAAAAAAAAAAAAAAAAAAAAA"
"""The all-zero id (base64) a broker without topic ids answers."""


def topic_id(bootstrap: str, name: str, timeout: float = 10.0) -> str | None:
    """The id of topic ``name``, or None when it is missing or the broker tells no ids."""
    config = {"bootstrap.servers": bootstrap, "logger": logging.getLogger(__name__)}
    client = AdminClient(config)  # type: ignore[arg-type]
    future = client.describe_topics(TopicCollection([name]), request_timeout=timeout)[name]
    try:
        found = future.result()
    except KafkaException:
        return None
    uuid = found.topic_id
    return str(uuid) if uuid is not None and str(uuid) != NO_ID else None
