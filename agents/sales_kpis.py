"""Sales KPIs in the transactions worker, beside the fraud agent, at a small cost.

It has no agent of its own: it follows the fraud agent (``TransactionsWorker.follow``,
joined by ``ecap.faust_app``) and gets each batch of ``transactions`` after the fraud
agent has scored it, with the records already decoded, so a record is delivered and
decoded once per process. The batch step is the one both KPI families share
(``agents.kpi_batches``); here a record is counted as follows:

* a record that is not a valid transaction is left to the fraud agent, which
  dead-letters it (``ecap_events_total{outcome="skipped"}`` here);
* a valid transaction is counted into the partition's delta (``ecap.kpis.sales``); one in
  a currency with no fixed rate goes to ``transactions.dlq`` (stage ``process``), since
  its revenue cannot be reported.
"""

from __future__ import annotations

from collections.abc import Sequence

import faust
from faust.types import EventT

from agents.kpi_batches import Count, KpiBatches, Rejected
from agents.transactions import Decoded
from ecap.currency import UnknownCurrency
from ecap.events import FailureStage
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
    def count(event: EventT, delta: Delta) -> int | None:
        message = event.message
        tx = decoded[message.partition, message.offset]
        if tx is None:
            return None
        try:
            sales.add(delta, ledger, tx)
        except UnknownCurrency as exc:
            raise Rejected(str(exc), FailureStage.PROCESS) from exc
        return sales.event_ms(tx)

    return count


def build(app: faust.App, worker_id: str, kpis: KpiLedger) -> SalesKpisWorker:
    """The sales ledger's reader, timer and revocation hook on ``app``; the caller has the
    worker follow the fraud agent."""
    worker = SalesKpisWorker(app, worker_id, kpis)
    worker.batches.attach(app)
    return worker
