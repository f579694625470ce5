"""``ecap worker alerts``: write every fraud alert to PostgreSQL as an open case, once.

The loop takes alerts in batches, inserts each batch in one statement with
``ON CONFLICT (transaction_id) DO NOTHING`` and only then lets Faust commit the offsets.
So a redelivered alert, an alert raised again after a transactions worker restarted, or
the same alert consumed by two sink workers, all end as one case: at-least-once delivery
plus an idempotent write. While PostgreSQL is unreachable the batch is retried (the
consumer lag grows) rather than dropped.

Every record is written or dead-lettered on its own (``fraud-alerts.dlq``): one that is
not an alert (stage ``decode``/``validate``), or one PostgreSQL refuses (stage
``process``: e.g. an ``alert_id`` already used by another transaction). When the batch
statement is refused, its alerts are written one by one, so a poisoned alert costs only
itself and the valid ones around it become cases.

The ``ecap-features`` header (the features the detector scored) is stored with the case,
so that a verdict can teach the model later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import asyncpg
import faust
from faust.types import EventT

from ecap import db
from ecap.db import cases
from ecap.deadletter import send_dead_letters
from ecap.events import FEATURES_HEADER, EventError, FailureStage, FraudAlert, decode
from ecap.kafka.batches import batches
from ecap.topics import FRAUD_ALERTS, dlq

logger = logging.getLogger(__name__)

TAKE_MAX = 500
TAKE_WITHIN_S = 0.05
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
REFUSED = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)
"""What PostgreSQL answers about one row's content, not about its own availability."""


def _header(event: EventT, name: str) -> bytes | None:
    headers = event.message.headers or ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in cast(Iterable[tuple[str, bytes | None]], pairs):
        if key == name:
            return value
    return None


class AlertsSink:
    """Batches of alerts into ``fraud_cases`` (see the module docstring)."""

    def __init__(self, app: faust.App, dsn: str, worker: str) -> None:
        self.dsn = dsn
        self.worker = worker
        self.dead_topic = app.topic(dlq(FRAUD_ALERTS), key_serializer="raw", value_serializer="raw")
        self.pool: asyncpg.Pool | None = None
        self.cases_created = 0

    async def start(self) -> asyncpg.Pool:
        pool = await db.create_pool(self.dsn)
        async with pool.acquire() as conn:
            await cases.check_schema(conn)
        self.pool = pool
        return pool

    async def consume(self, stream: faust.StreamT[bytes]) -> None:
        pool = self.pool or await self.start()
        async for events in batches(stream, TAKE_MAX, TAKE_WITHIN_S):
            await self.write(pool, events)

    async def write(self, pool: asyncpg.Pool, events: Sequence[EventT]) -> None:
        alerts: list[tuple[EventT, FraudAlert, bytes | None]] = []
        dead: list[tuple[EventT, str, FailureStage]] = []
        for event in events:
            try:
                alert = decode(FraudAlert, event.value)
            except EventError as exc:
                dead.append((event, str(exc), exc.stage))
                continue
            alerts.append((event, alert, _header(event, FEATURES_HEADER)))
        created = await self._insert(pool, alerts, dead)
        await send_dead_letters(self.dead_topic, dead, self.worker)
        self.cases_created += created
        if created:
            logger.info(
                "%d new case(s) from %d alert(s); %d in total",
                created,
                len(alerts),
                self.cases_created,
            )

    async def _insert(
        self,
        pool: asyncpg.Pool,
        alerts: list[tuple[EventT, FraudAlert, bytes | None]],
        dead: list[tuple[EventT, str, FailureStage]],
    ) -> int:
        """Insert the batch in one statement; if PostgreSQL refuses it, one by one, and
        dead-letter each alert it refuses."""
        try:
            return await self._retrying(pool, [(a, f) for _, a, f in alerts])
        except REFUSED as exc:
            logger.warning(
                "a batch of %d alerts was refused (%s); writing one by one", len(alerts), exc
            )
        created = 0
        for event, alert, features in alerts:
            try:
                created += await self._retrying(pool, [(alert, features)])
            except REFUSED as exc:
                logger.error("alert %s refused, dead-lettered: %s", alert.alert_id, exc)
                dead.append((event, f"{type(exc).__name__}: {exc}", FailureStage.PROCESS))
        return created

    async def _retrying(
        self, pool: asyncpg.Pool, alerts: list[tuple[FraudAlert, bytes | None]]
    ) -> int:
        """``cases.insert_alerts``, retried while PostgreSQL is unreachable."""
        delay = RETRY_FIRST_S
        while True:
            try:
                return await cases.insert_alerts(pool, alerts)
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                logger.warning("PostgreSQL unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)


async def _check_schema(dsn: str) -> None:
    conn = await db.connect(dsn)
    try:
        await cases.check_schema(conn)
    finally:
        await conn.close()


def build(app: faust.App, worker_id: str) -> AlertsSink:
    """Add the alerts-to-cases agent, after checking that the database has its tables (a
    worker that cannot write cases should not start consuming alerts)."""
    dsn = db.dsn()
    asyncio.run(_check_schema(dsn))
    sink = AlertsSink(app, dsn, worker_id)
    source = app.topic(FRAUD_ALERTS, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="fraud-cases")
    async def write_cases(stream: faust.StreamT[bytes]) -> None:
        await sink.consume(stream)

    return sink
