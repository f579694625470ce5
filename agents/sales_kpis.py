"""Sales KPIs in the transactions worker, beside the fraud agent, at a small cost.

It has no agent of its own: it follows the fraud agent (``TransactionsWorker.follow``,
joined by ``ecap.faust_app``) and gets each batch of ``transactions`` after the fraud
agent has scored it, with the records already decoded, so a record is delivered and
decoded once per process. The batch step is the one both KPI families share
(``agents.kpi_batches``); here a record is counted as follows:

* a record that is not a valid transaction, or whose event time is implausible for its
  record timestamp (:mod:`ecap.event_time`), is left to the fraud agent, which
  dead-letters it (``ecap_events_total{outcome="skipped"}`` here): the fraud agent
  checks the bounds once, and hands such a record on as ``None``;
* a valid transaction is counted into the partition's delta (``ecap.kpis.sales``) once
  per transaction id: a copy (sent again, or under another user) is not counted again
  (``ecap_kpi_duplicate_transactions_total``); one in a currency with no fixed rate is
  counted without its amount (``ecap_kpi_unconverted_total{currency}``); one whose
  counting raises is dead-lettered (stage ``process``) and costs only itself
  (``agents.kpi_batches``).
"""

from __future__ import annotations

from collections.abc import Sequence

import faust
from faust.types import EventT

from agents.kpi_batches import Count, KpiBatches
from agents.transactions import Decoded
from ecap import metrics
from ecap.kpis import sales
from ecap.kpis.ledger import Delta, Ledger
from tables.kpi_ledger_topic import KpiLedger


class SalesKpisWorker:
    """The sales KPI family's batch step."""

    def __init__(self, app: faust.App, worker: str, kpis: KpiLedger) -> None:
        self.batches = KpiBatches(app, worker, kpis)

    async def follow(self, events: Sequence[EventT], decoded: Decoded) -> None:
        """Count one batch (``decoded``: the records the fraud agent decoded)."""
        await self.batches.take(events, _counter(self.batches.kpis.ledger, decoded))


def _counter(ledger: Ledger, decoded: Decoded) -> Count:
    counted_in: dict[str, Delta] = {}
    """Transaction id -> the delta of this batch that counted it. A copy in another
    partition's delta of the same attempt (same ``arrived_ms``) is not in the ledger yet;
    an entry of an earlier attempt or of an earlier pass over the same partition
    (``agents.kpi_batches`` takes a batch again with fresh deltas) is not a copy."""

    def count(event: EventT, delta: Delta) -> int | None:
        message = event.message
        tx = decoded[message.partition, message.offset]
        if tx is None:
            return None
        owner = counted_in.get(tx.transaction_id)
        elsewhere = (
            owner is not None
            and owner.partition != delta.partition
            and owner.arrived_ms == delta.arrived_ms
        )
        outcome = sales.add(delta, ledger, tx, counted_elsewhere=elsewhere)
        if outcome is sales.Outcome.DUPLICATE:
            metrics.KPI_DUPLICATE_TRANSACTIONS.inc()
        elif outcome is not sales.Outcome.EXPIRED:
            counted_in[tx.transaction_id] = delta
            if outcome is sales.Outcome.UNCONVERTED:
                metrics.KPI_UNCONVERTED.labels(tx.currency).inc()
        return sales.event_ms(tx)

    return count


def build(app: faust.App, worker_id: str, kpis: KpiLedger) -> SalesKpisWorker:
    """The sales ledger's reader, timer and revocation hook on ``app``; the caller has the
    worker follow the fraud agent."""
    worker = SalesKpisWorker(app, worker_id, kpis)
    worker.batches.attach(app)
    return worker
