"""What every worker serves on its web port: ``/health`` and ``/metrics``, registered once
per app by the composition root (``ecap.faust_app``), and the helpers the other views use.

``/health`` answers without a token (``ecap.auth``); everything else asks for one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from ecap.kpis.ledger import Ledger
from ecap.workers import WorkerSpec

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


def health_and_metrics(app: faust.App, spec: WorkerSpec, health: Health) -> None:
    """``/health`` (200 when ready, 503 while starting) and ``/metrics``."""

    @page(app, "/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            ready = health.ready()
            return self.json(
                {
                    "worker": spec.name,
                    "instance": spec.instance,
                    "url": spec.url,
                    "status": "ok" if ready else "starting",
                    **health.details(),
                },
                status=200 if ready else 503,
            )

    @page(app, "/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(), content_type=METRICS_CONTENT_TYPE)
