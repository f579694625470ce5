"""Dead letters: a record that fails keeps its bytes, its error and the stage it failed."""

from __future__ import annotations

import base64
import socket

from ecap.events import DeadLetter, FailureStage, encode, now_utc
from ecap.topics import dlq

__all__ = ["dead_letter", "dlq", "worker_id"]


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
