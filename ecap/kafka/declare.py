"""Create one topic now, with its partition count and configuration, on any broker.

For a worker that finds one of its own topics gone (a restarted embedded broker, a
deleted topic) and must create it again before anything else asks about it. Faust's own
declaration cannot be used then: it skips a topic its cached metadata still lists, and
waits without end for a broker that took the request while coming back.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    replication: int,
    config: dict[str, str],
    timeout: float = 10.0,
) -> bool:
    """Create topic ``name``; False if it exists already. Raises ``RuntimeError`` saying
    why when the broker refuses, ``TimeoutError`` when it does not answer in time."""
    settings = {"bootstrap.servers": bootstrap, "logger": logging.getLogger(__name__)}
    client = AdminClient(settings)  # type: ignore[arg-type]
    future = client.create_topics(
        [NewTopic(name, partitions, replication, config=config)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )[name]
    try:
        future.result(timeout=timeout + 5)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        if error.code() in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT):
            raise TimeoutError(f"creating topic {name} at {bootstrap}: {error.str()}") from exc
        raise RuntimeError(f"could not create topic {name} at {bootstrap}: {error.str()}") from exc
    return True
