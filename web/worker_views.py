"""What every worker serves on its web port: ``/health`` and ``/metrics``, registered once
per app by the composition root (``ecap.faust_app``), and the helpers the other views use.

``/health`` answers without a token with the status alone, and with the token with the
details too (partitions, offsets, event times, the rule set: nothing for an anonymous
caller to map the deployment with); everything else asks for the token (``ecap.auth``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import faust
from aiohttp import web
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from ecap import auth
from ecap.kpis.ledger import Ledger
from ecap.workers import WorkerSpec
from tables.log_resets import LogResets

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"
"""Prometheus text format; aiohttp adds the charset itself (and refuses one given here)."""


def page(app: faust.App, path: str) -> Callable[[type[View]], type[View]]:
    """Register a view at ``path`` with and without a trailing slash (Faust routes paths
    exactly)."""

    def register(view: type[View]) -> type[View]:
        bare = path.rstrip("/")
        slashed = type(f"{view.__name__}Slash", (view,), {})
        for spelled, cls in ((bare, view), (bare + "/", slashed)):
            app.page(spelled, name=f"{view.__name__}:{spelled}")(cls)
        return view

    return register


def as_of(ledger: Ledger) -> dict[str, Any]:
    """What a KPI answer was computed from: watermark, latest event, offsets folded."""
    return {
        "watermark": ledger.clock.value,
        "latest_event": ledger.max_event_ms,
        "applied": {str(p): offset for p, offset in sorted(ledger.applied.items())},
    }


def bad_request(view: View, message: str) -> Response:
    return view.json({"error": message}, status=400)


@dataclass(frozen=True)
class Health:
    """What ``/health`` reports for one worker: whether it is ready, and its details."""

    ready: Callable[[], bool]
    details: Callable[[], dict[str, Any]]
    degraded: Callable[[], bool] = lambda: False
    """Ready, but something the operator should look at happened (the status says
    ``degraded``, still with 200)."""


def with_log_resets(health: Health, resets: LogResets) -> Health:
    """``health`` that is ``degraded`` for a while after a log reset was repaired, with the
    repairs in its details (``tables.log_resets``)."""
    return Health(
        health.ready,
        lambda: {**health.details(), **resets.details()},
        lambda: health.degraded() or resets.degraded(),
    )


def health_and_metrics(app: faust.App, spec: WorkerSpec, health: Health) -> None:
    """``/health`` (200 when ready, 503 while starting; the details only with the token)
    and ``/metrics``."""

    @page(app, "/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            ready = health.ready()
            status = ("degraded" if health.degraded() else "ok") if ready else "starting"
            answer: dict[str, Any] = {"status": status}
            if auth.authorized(cast(web.Request, request)):
                answer = {
                    "worker": spec.name,
                    "instance": spec.instance,
                    "url": spec.url,
                    **answer,
                    **health.details(),
                }
            return self.json(answer, status=200 if ready else 503)

    @page(app, "/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(), content_type=METRICS_CONTENT_TYPE)
