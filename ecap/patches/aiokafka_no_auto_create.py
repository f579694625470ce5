"""Keep aiokafka, and so Faust, from creating topics by asking about them.

The bug. aiokafka asks for metadata with Metadata v1 (``AIOKafkaClient._metadata_update``
builds ``MetadataRequest[1]``). Under v0 to v3 a broker creates every topic asked about
that does not exist, with its default partition count, when auto-creation is on: the
embedded broker (Tansu 0.6.0) always does, with 4 partitions, and so does Apache Kafka
with ``auto.create.topics.enable`` (its default). A worker asks about its topics all the
time, so when its broker restarts empty, or a topic is deleted, the worker creates it
again within a second: ``transactions`` with 4 partitions instead of 6, a table's changelog
with 4 instead of its table's 6. Faust then finds the changelog no longer co-partitioned
with its source, records for the missing partitions cannot be sent, and ``ecap topics
create`` finds the topics "existing".

The fix. :func:`install` makes aiokafka ask with Metadata v4 and
``allow_auto_topic_creation=false`` (Kafka 1.0 and later, and the embedded broker, honour
it): a missing topic stays missing until ``ecap topics create`` or the worker that owns it
creates it with the right partition count (Faust declares its internal topics;
``tables.changelog_reset`` declares a changelog found missing). The request is the same
but for the flag, and its answer is read by aiokafka's own code. ``ecap.faust_app``
installs it in every worker, on any broker. Regression test:
``tests/integration/regressions/aiokafka_auto_creates_topics/``.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from aiokafka import client as aiokafka_client
from aiokafka.protocol.metadata import MetadataRequest, MetadataRequest_v4

from ecap.patches import require

__all__ = ["SUPPORTED", "install", "is_installed", "uninstall"]

SUPPORTED = ("0.12.0",)
"""aiokafka versions whose client asks for metadata through ``aiokafka.client.MetadataRequest``
with versions 0 and 1 only."""


class _WithoutAutoCreate:
    """``MetadataRequest`` as aiokafka's client indexes it, with version 1 asked as
    version 4 without auto-creation."""

    def __getitem__(self, version: int) -> Any:
        if version == 1:
            return _v4_without_auto_create
        return MetadataRequest[version]


def _v4_without_auto_create(topics: list[str] | None) -> MetadataRequest_v4:
    return MetadataRequest_v4(topics, False)


def install() -> None:
    """Make every aiokafka client of this process ask without auto-creation. Idempotent."""
    require("aiokafka", aiokafka.__version__, SUPPORTED, __name__)
    aiokafka_client.MetadataRequest = _WithoutAutoCreate()


def uninstall() -> None:
    """Let aiokafka ask with its own metadata requests again. Idempotent."""
    aiokafka_client.MetadataRequest = MetadataRequest


def is_installed() -> bool:
    return isinstance(aiokafka_client.MetadataRequest, _WithoutAutoCreate)
