"""Sales KPIs in the transactions worker, beside the fraud agent, at a small cost.

It has no agent of its own: it follows the fraud agent (``TransactionsWorker.follow``)
and gets each batch of ``transactions`` after the fraud agent has scored it, with the
records already decoded, so a record is delivered and decoded once per process. Per
batch:

1. **skips** records the ledger already holds (see ``ecap.kpis.ledger``);
2. **takes** each record decoded; a record that is not a valid transaction is left to the
   fraud agent, which dead-letters it (``ecap_events_total{outcome="skipped"}`` here);
3. **counts** it into the partition's delta in memory (``ecap.kpis.sales``); a valid
   transaction in a currency with no fixed rate goes to ``transactions.dlq`` (stage
   ``process``), since its revenue cannot be reported;
4. folds and sends **one ledger record per batch** (``tables.kpi_windows``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP, EventT
from mode.types.signals import BaseSignalT

from agents import transactions as transactions_agent
from agents.transactions import Decoded
from ecap import metrics
from ecap.deadletter import send_dead_letters, worker_id
from ecap.events import FailureStage
from ecap.faust_app import WorkerSpec
from ecap.kpis import sales
from ecap.kpis.ledger import Delta
from ecap.kpis.money import UnknownCurrency
from ecap.topics import BY_NAME, TRANSACTIONS, dlq
from tables.kpi_windows import TICK_S, KpiLedger, on_revoked
from web import live

logger = logging.getLogger(__name__)


class SalesKpisWorker:
    """The sales agent's batch step and its ledger."""

    def __init__(self, app: faust.App, worker: str) -> None:
        self.worker = worker
        self.kpis = KpiLedger(
            app,
            family="sales",
            source=TRANSACTIONS,
            ledger=sales.new_ledger(BY_NAME[TRANSACTIONS].partitions),
            results=sales.results,
        )
        self.dead_topic = app.topic(dlq(TRANSACTIONS), key_serializer="raw", value_serializer="raw")
        self.rate = metrics.RateMeter(metrics.EVENTS_PER_SECOND.labels(TRANSACTIONS))
        self._processed = metrics.EVENTS.labels(TRANSACTIONS, "processed")
        self._skipped = metrics.EVENTS.labels(TRANSACTIONS, "skipped")
        self._duplicates = metrics.EVENTS.labels(TRANSACTIONS, "duplicate")
        self._expired = metrics.EVENTS.labels(TRANSACTIONS, "expired")
        self._late = metrics.LATE_EVENTS.labels("sales")
        self._latency = metrics.PROCESSING_LATENCY.labels(TRANSACTIONS)

    async def follow(self, events: Sequence[EventT], decoded: Decoded) -> None:
        """Count one batch (``decoded``: the records the fraud agent decoded); a failure
        is logged and the worker goes on."""
        try:
            await self.process(events, decoded)
        except Exception:
            # Counted in this worker's views, maybe missing from the ledger topic.
            metrics.EVENTS.labels(TRANSACTIONS, "failed").inc(len(events))
            logger.exception("a batch of %d records failed; the worker goes on", len(events))

    async def process(self, events: Sequence[EventT], decoded: Decoded) -> None:
        arrived_ms = int(time.time() * 1000)
        self.rate.add(len(events))
        by_partition: dict[int, list[EventT]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        await self.kpis.prepare(by_partition)
        ledger = self.kpis.ledger
        deltas: list[Delta] = []
        unconvertible: list[tuple[EventT, str, FailureStage]] = []
        times: list[int] = []
        for partition, partition_events in by_partition.items():
            delta: Delta | None = None
            for event in partition_events:
                offset = event.message.offset
                if ledger.is_applied(partition, offset):
                    self._duplicates.inc()
                    continue
                if delta is None:
                    delta = Delta(partition, offset, offset, arrived_ms)
                delta.last = offset
                tx = decoded[partition, offset]
                if tx is None:
                    self._skipped.inc()
                    continue
                try:
                    sales.add(delta, ledger, tx)
                except UnknownCurrency as exc:
                    unconvertible.append((event, str(exc), FailureStage.PROCESS))
                    continue
                times.append(sales.event_ms(tx))
            if delta is not None:
                deltas.append(delta)
        await send_dead_letters(self.dead_topic, unconvertible, self.worker)
        for delta in deltas:
            late = sum(delta.late.values())
            if late:
                self._late.inc(late)
            if delta.expired:
                self._expired.inc(delta.expired)
        await self.kpis.write(deltas)
        self._processed.inc(len(times))
        now = time.time()
        for at in times:
            self._latency.observe(now - at / 1000)


def build(app: faust.App, spec: WorkerSpec) -> None:
    """Follow the fraud agent; add the ledger reader, a timer and the live views."""
    fraud = transactions_agent.worker_on(app)
    if fraud is None:
        raise RuntimeError(
            "the sales KPIs follow the fraud agent: build agents.transactions on this app "
            "first (ecap.faust_app.WORKERS lists it before agents.sales_kpis)"
        )
    worker = SalesKpisWorker(app, worker_id(spec.name, spec.instance))
    fraud.follow(worker.follow)

    @app.task
    async def follow_sales_ledger() -> None:
        await worker.kpis.follow()

    @app.timer(TICK_S)
    async def sales_tick() -> None:
        await worker.kpis.tick()
        worker.rate.update()

    @app.on_partitions_revoked.connect
    def on_sales_revoked(
        sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        revoked: set[TP] = args[0]
        on_revoked(worker.kpis, revoked)

    live.sales_views(app, worker.kpis)
    live.risk_view(app, spec)
    live.common_views(app, spec, worker.kpis)
