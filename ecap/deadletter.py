"""Dead letters: a record that fails keeps its bytes, its error and the stage it failed."""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import Awaitable, Iterable
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from faust.types import EventT, TopicT

from ecap import metrics
from ecap.events import DeadLetter, FailureStage, encode, now_utc
from ecap.topics import dlq

__all__ = ["dead_letter", "dlq", "send_dead_letters", "worker_id"]

logger = logging.getLogger(__name__)


def worker_id(name: str, instance: int) -> str:
    return f"{name}-{instance}@{socket.gethostname()}"


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: str,
    stage: FailureStage,
    worker: str,
) -> bytes:
    """The encoded dead-letter record for one failed input record."""
    return encode(
        DeadLetter(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            payload_b64=base64.b64encode(value or b"").decode(),
            error=error[:2000],
            stage=stage,
            worker=worker[:120],
            failed_at=now_utc(),
        )
    )


async def send_dead_letters(
    dead_topic: TopicT,
    dead: Iterable[tuple[EventT, str, FailureStage]],
    worker: str,
) -> None:
    """Send a dead letter for each (event, error, stage), count it, and wait until the
    broker has acknowledged them all (an error is raised to the caller, which takes its
    batch again: a batch is not committed before its dead letters are stored).

    A dead letter carries its record base64-encoded; one over the producer's request
    limit or the broker's message limit is sent without its payload, which stays in the
    source topic, and the error says where.
    """
    pending: list[tuple[EventT, str, FailureStage, Awaitable[Any]]] = []
    for event, error, stage in dead:
        message = event.message
        metrics.DEAD_LETTERS.labels(message.topic, stage.value).inc()
        metrics.EVENTS.labels(message.topic, "dead_letter").inc()
        try:
            sent = await _send(dead_topic, event, message.value, error, stage, worker)
        except MessageSizeTooLargeError:
            sent = await _send_trimmed(dead_topic, event, error, stage, worker)
        pending.append((event, error, stage, sent))
    for event, error, stage, sent in pending:
        try:
            await sent
        except MessageSizeTooLargeError:
            await (await _send_trimmed(dead_topic, event, error, stage, worker))


async def _send_trimmed(
    dead_topic: TopicT, event: EventT, error: str, stage: FailureStage, worker: str
) -> Awaitable[Any]:
    message = event.message
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    size = len(message.value or b"")
    logger.error("%s: dead letter over the size limit; sent without its payload", where)
    error = f"{error} [payload of {size} bytes left in {where}: too large]"
    return await _send(dead_topic, event, b"", error, stage, worker)


async def _send(
    dead_topic: TopicT,
    event: EventT,
    value: bytes | None,
    error: str,
    stage: FailureStage,
    worker: str,
) -> Awaitable[Any]:
    message = event.message
    letter = dead_letter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=value,
        error=error,
        stage=stage,
        worker=worker,
    )
    return await dead_topic.send(key=message.key, value=letter, force=True)
