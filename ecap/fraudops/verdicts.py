"""Recording a verdict: stored in PostgreSQL, then published to ``fraud-feedback`` for the
detectors to learn, then marked published. ``ecap cases verdict`` and the REST API both
call :func:`decide`, so a verdict reaches the detectors the same way from either.

1. The verdict is stored and the case closed (``ecap.db.case_work.record_verdict``),
   committed before anything is sent: a verdict the broker never saw is still on record.
2. The feedback is sent and the broker's acknowledgement awaited (``acks=all``).
3. Only then is the verdict marked published. When step 2 fails, sending the same verdict
   again publishes the stored one (step 1 returns it instead of storing another).
"""

from __future__ import annotations

import asyncio

import asyncpg
from confluent_kafka import KafkaException, Producer

from ecap.db import case_work
from ecap.events import FraudFeedback, Verdict, encode
from ecap.topics import FRAUD_FEEDBACK


class FeedbackNotPublished(RuntimeError):
    """The verdict is stored, but ``fraud-feedback`` did not take it; send it again."""


def publish_feedback(bootstrap: str, feedback: FraudFeedback, timeout: float = 15.0) -> None:
    """Send a verdict to ``fraud-feedback`` and wait for the broker's acknowledgement."""
    errors: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(
        FRAUD_FEEDBACK,
        key=feedback.transaction_id.encode(),
        value=encode(feedback),
        on_delivery=lambda error, _: errors.append(str(error)) if error else None,
    )
    if producer.flush(timeout) or errors:
        reason = errors[0] if errors else f"no acknowledgement within {timeout} s"
        raise KafkaException(reason)


async def decide(
    conn: asyncpg.Connection,
    bootstrap: str,
    case_id: int,
    verdict: Verdict,
    *,
    note: str | None,
    decided_by: str,
) -> case_work.RecordedVerdict:
    """Store, publish and mark the verdict (steps above); :class:`FeedbackNotPublished`
    when the broker did not acknowledge it."""
    recorded = await case_work.record_verdict(
        conn, case_id, verdict, note=note, decided_by=decided_by
    )
    try:
        await asyncio.to_thread(publish_feedback, bootstrap, recorded.feedback)
    except KafkaException as exc:
        raise FeedbackNotPublished(
            f"verdict stored on case {case_id}, but {FRAUD_FEEDBACK} did not take it ({exc}); "
            "send the same verdict again to publish it"
        ) from exc
    await case_work.mark_published(conn, recorded.verdict_id)
    return recorded
