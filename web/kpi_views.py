"""Faust web views of the live KPIs, on each worker's web port (see ``docs/api-live.md``).

Every worker holds its family's whole ledger (``ecap.kpis.ledger``), so the data views
answer the same from any worker of that kind: sales views on the transactions workers,
clickstream views on the user-events workers. Every answer carries ``as_of``: the
watermark, the latest event time and the last input offset folded per partition.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from ecap.events import WindowKind
from ecap.kpis import clickstream, sales
from tables.kpi_ledger_topic import KpiLedger
from web.worker_views import Health, as_of, bad_request, page


def sales_views(app: faust.App, kpis: KpiLedger) -> None:
    """``/kpis/current/`` and ``/kpis/timeseries/`` on the transactions worker."""
    ledger = kpis.ledger

    @page(app, "/kpis/current")
    class CurrentKpis(View):
        async def get(self, request: Request) -> Response:
            return self.json({**sales.current(ledger), "as_of": as_of(ledger)})

    @page(app, "/kpis/timeseries")
    class KpiTimeseries(View):
        async def get(self, request: Request) -> Response:
            query = request.query
            metric = query.get("metric", "revenue")
            dimension = query.get("dimension", "all")
            try:
                window = WindowKind(query.get("window", WindowKind.TUMBLING_1M.value))
                series = sales.timeseries(ledger, metric, window, dimension)
            except ValueError as exc:
                return bad_request(self, str(exc))
            return self.json(
                {
                    "metric": metric,
                    "window": window.value,
                    "dimension": dimension,
                    "series": series,
                    "as_of": as_of(ledger),
                }
            )


def clickstream_views(app: faust.App, kpis: KpiLedger) -> None:
    """``/funnel/``, ``/sessions/active/`` and ``/top/`` on the user-events worker."""
    ledger = kpis.ledger

    @page(app, "/funnel")
    class Funnel(View):
        async def get(self, request: Request) -> Response:
            try:
                answer = clickstream.funnel(
                    ledger, request.query.get("window", WindowKind.HOPPING_1H.value)
                )
            except ValueError as exc:
                return bad_request(self, f"{exc}; use tumbling_1m, hopping_1h or total")
            return self.json({**answer, "as_of": as_of(ledger)})

    @page(app, "/sessions/active")
    class ActiveSessions(View):
        async def get(self, request: Request) -> Response:
            return self.json({**clickstream.sessions_active(ledger), "as_of": as_of(ledger)})

    @page(app, "/top")
    class TopLists(View):
        async def get(self, request: Request) -> Response:
            try:
                answer = clickstream.top_lists(
                    ledger, request.query.get("window", WindowKind.HOPPING_1H.value)
                )
            except ValueError as exc:
                return bad_request(self, f"{exc}; use tumbling_1m, hopping_1h or sliding_5m")
            return self.json({**answer, "as_of": as_of(ledger)})


def kpi_health(kpis: KpiLedger) -> Health:
    """A KPI worker is ready once it has read its family's ledger."""

    def held() -> list[int]:
        try:
            return kpis.held()
        except Exception:  # the consumer is not started yet
            return []

    def details() -> dict[str, Any]:
        return {
            "family": kpis.family,
            "ledger_caught_up": kpis.caught_up.is_set(),
            "held_partitions": held(),
            "late_events": sum(kpis.ledger.late.values()),
            "expired_events": kpis.ledger.expired,
            "as_of": as_of(kpis.ledger),
        }

    return Health(ready=kpis.caught_up.is_set, details=details)
