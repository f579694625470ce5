"""Read whole topics in every worker process, from the beginning, and keep following them.

Control topics (the live rule set, investigators' verdicts) must reach *every* worker,
while a consumer group would hand each partition to one worker only. A
:class:`BroadcastReader` joins no group: it assigns itself every partition of its topics,
reads from the first offset, tells when it has caught up with the end offsets it found at
start (:attr:`caught_up`), then follows new records within ``fetch_max_wait_ms``.

Readers of "compacted" topics see every record ever written (the embedded broker does not
compact) and must let the latest value per key win; the handler is called in offset
order per partition, so keeping the last value is enough.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import TopicPartition

logger = logging.getLogger(__name__)

Handler = Callable[[ConsumerRecord[bytes, bytes], bool], None]
"""Called per record with (record, caught_up); must not raise."""

MISSING_TOPIC_RETRY_S = 2.0


class BroadcastReader:
    """Follows ``topics`` from their beginning and calls ``handle`` for each record."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        handle: Handler,
        *,
        client_id: str,
        fetch_max_wait_ms: int = 100,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self.handle = handle
        self.client_id = client_id
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.caught_up = asyncio.Event()
        """Set once every record that existed at start has been handled (or the topics
        turned out to be missing, so that workers start with their defaults)."""

    async def run(self) -> None:
        """Read until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            pending = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
            if not pending:
                self.caught_up.set()
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    for record in records:
                        if tp in pending and record.offset + 1 >= ends[tp]:
                            pending.discard(tp)
                        self._handle(record, not pending)
                if pending:
                    for tp in list(pending):
                        if await consumer.position(tp) >= ends[tp]:
                            pending.discard(tp)
                if not pending and not self.caught_up.is_set():
                    self.caught_up.set()
        finally:
            await consumer.stop()

    def _handle(self, record: ConsumerRecord[bytes, bytes], caught_up: bool) -> None:
        try:
            self.handle(record, caught_up)
        except Exception:
            logger.exception(
                "handling %s[%d]@%d failed; the record is skipped",
                record.topic,
                record.partition,
                record.offset,
            )

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Every partition of the topics, waiting (and saying so) while one is missing."""
        warned = False
        while True:
            existing = await consumer.topics()
            missing = [t for t in self.topics if t not in existing]
            if not missing:
                return [
                    TopicPartition(topic, p)
                    for topic in self.topics
                    for p in sorted(consumer.partitions_for_topic(topic) or ())
                ]
            if not warned:
                logger.warning(
                    "topic(s) %s do not exist yet; running with defaults until they do "
                    "(create them with 'ecap topics create')",
                    ", ".join(missing),
                )
                warned = True
                self.caught_up.set()
            await asyncio.sleep(MISSING_TOPIC_RETRY_S)
