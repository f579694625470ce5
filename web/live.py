"""Faust web views of the live KPIs, on each worker's web port (see ``docs/api-live.md``).

Every worker holds its family's whole ledger (``ecap.kpis.ledger``), so the data views
answer the same from any worker of that kind: sales views on the transactions workers,
clickstream views on the user-events workers. ``/users/{id}/risk/`` reads the fraud
state of one user, which only the worker holding that user's partition has: it is
routed there with ``@app.table_route``. Every answer carries ``as_of``: the watermark,
the latest event time and the last input offset folded per partition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from ecap.events import WindowKind
from ecap.faust_app import WorkerSpec
from ecap.kpis import clickstream, sales
from ecap.kpis.ledger import Ledger
from tables.kpi_windows import KpiLedger

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"
"""Prometheus text format; aiohttp adds the charset itself (and refuses one given here)."""


def page(app: faust.App, path: str) -> Callable[[type[View]], type[View]]:
    """Register a view at ``path`` with and without a trailing slash (Faust routes paths
    exactly), skipping a spelling another module of the app registered already."""

    def register(view: type[View]) -> type[View]:
        bare = path.rstrip("/")
        slashed = type(f"{view.__name__}Slash", (view,), {})
        for spelled, cls in ((bare, view), (bare + "/", slashed)):
            if spelled not in app.web.views:
                app.page(spelled, name=f"{view.__name__}:{spelled}")(cls)
        return view

    return register


def as_of(ledger: Ledger) -> dict[str, Any]:
    return {
        "watermark": ledger.clock.value,
        "latest_event": ledger.max_event_ms,
        "applied": {str(p): offset for p, offset in sorted(ledger.applied.items())},
    }


def _bad_request(view: View, message: str) -> Response:
    return view.json({"error": message}, status=400)


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
                return _bad_request(self, str(exc))
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
                return _bad_request(self, f"{exc}; use tumbling_1m, hopping_1h or total")
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
                return _bad_request(self, f"{exc}; use tumbling_1m, hopping_1h or sliding_5m")
            return self.json({**answer, "as_of": as_of(ledger)})


def risk_view(app: faust.App, spec: WorkerSpec) -> None:
    """``/users/{user_id}/risk/``: the fraud state of one user, from its owner.

    Needs the fraud agent's ``tables.user_state`` table in the same app (the
    transactions worker builds it before this module).
    """
    from ecap.fraud.state import UserState
    from tables import user_state

    found = app.tables.get(user_state.USER_STATE)
    if found is None:
        raise RuntimeError(
            f"table {user_state.USER_STATE!r} is not defined; build agents.transactions "
            "before agents.sales_kpis (see ecap.faust_app.WORKERS)"
        )
    table: Any = found

    @page(app, "/users/{user_id}/risk")
    class UserRisk(View):
        @app.table_route(table=table, match_info="user_id")  # type: ignore[arg-type]
        async def get(self, request: Request, user_id: str) -> Response:
            raw = table.get(user_state.user_key(user_id))
            if raw is None:
                return self.json(
                    {"user_id": user_id, "error": "no fraud state for this user"}, status=404
                )
            return self.json(
                {**risk_summary(user_id, UserState.from_bytes(raw)), "served_by": spec.url}
            )


def risk_summary(user_id: str, state: Any) -> dict[str, Any]:
    """What an investigator reads first about a user's fraud state."""
    now = state.last_time
    last_hour = state.window(now, 3600.0) if now is not None else (0, 0.0)
    last_day = state.day(now) if now is not None else (0, 0.0)
    instruments, devices, ips = state.distinct_last_hour(now) if now is not None else (0, 0, 0)
    return {
        "user_id": user_id,
        "transactions": state.count,
        "first_time": state.first_time,
        "last_time": state.last_time,
        "last_hour": {"purchases": last_hour[0], "amount": round(last_hour[1], 2)},
        "last_day": {"purchases": last_day[0], "amount": round(last_day[1], 2)},
        "distinct_last_hour": {"instruments": instruments, "devices": devices, "ips": ips},
        "mean_amount": state.mean_amount,
        "known": {
            "devices": len(state.devices),
            "instruments": len(state.instruments),
            "ips": len(state.ips),
            "places": len(state.places),
        },
    }


def _held(kpis: KpiLedger) -> list[int]:
    try:
        return kpis.held()
    except Exception:  # the consumer is not started yet
        return []


def common_views(app: faust.App, spec: WorkerSpec, kpis: KpiLedger) -> None:
    """``/health`` and ``/metrics`` (a spelling another module registered first stays)."""

    @page(app, "/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            ready = kpis.caught_up.is_set()
            return self.json(
                {
                    "worker": spec.name,
                    "instance": spec.instance,
                    "url": spec.url,
                    "status": "ok" if ready else "starting",
                    "family": kpis.family,
                    "ledger_caught_up": ready,
                    "held_partitions": _held(kpis),
                    "late_events": sum(kpis.ledger.late.values()),
                    "expired_events": kpis.ledger.expired,
                    "as_of": as_of(kpis.ledger),
                },
                status=200 if ready else 503,
            )

    @page(app, "/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(), content_type=METRICS_CONTENT_TYPE)
