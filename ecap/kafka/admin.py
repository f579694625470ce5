"""Create and describe the catalog's topics on any Kafka-compatible broker."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from ecap.topics import CATALOG, TopicSpec


class BrokerUnreachable(RuntimeError):
    """The bootstrap address did not answer."""


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int
    config: dict[str, str]


def admin_client(bootstrap: str, timeout: float = 10.0) -> AdminClient:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": int(timeout * 1000),
        # librdkafka's own log (a line per failed connection, twenty a second) goes to
        # Python logging, not to stderr, where it buried BrokerUnreachable's advice.
        "logger": logging.getLogger(__name__),
    }
    client = AdminClient(config)
    try:
        client.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnreachable(
            f"the broker at {bootstrap} did not answer ({exc.args[0].str()}); start the embedded "
            "stack with 'ecap up' or point ECAP_KAFKA_BOOTSTRAP at your broker"
        ) from exc
    return client


def create_topics(
    client: AdminClient, specs: tuple[TopicSpec, ...] = CATALOG, replication: int = 1
) -> dict[str, str]:
    """Create the topics that do not exist yet; return ``name -> "created" | "exists"``.

    Existing topics are left as they are (their partition count is reported by
    :func:`describe_topics`), so running this twice changes nothing.
    """
    existing = set(client.list_topics(timeout=10).topics)
    missing = [spec for spec in specs if spec.name not in existing]
    outcome = {spec.name: "exists" for spec in specs if spec.name in existing}
    if not missing:
        return outcome
    futures = client.create_topics(
        [NewTopic(s.name, s.partitions, replication, config=s.config()) for s in missing],
        operation_timeout=30,
    )
    for name, future in futures.items():
        try:
            future.result()
            outcome[name] = "created"
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {name}: {error.str()}") from exc
            outcome[name] = "exists"
    return outcome


def describe_topics(client: AdminClient, names: list[str]) -> list[TopicInfo]:
    """Partitions and configuration of the named topics that exist, in the given order."""
    metadata = client.list_topics(timeout=10).topics
    present = [name for name in names if name in metadata]
    configs: dict[str, dict[str, str]] = {}
    if present:
        futures = client.describe_configs([ConfigResource("topic", n) for n in present])
        for resource, future in futures.items():
            try:
                entries = future.result()
            except KafkaException:
                entries = {}
            configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
    return [TopicInfo(n, len(metadata[n].partitions), configs.get(n, {})) for n in present]
