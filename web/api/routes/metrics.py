"""``GET /metrics``: Prometheus text format of the process-wide registry (``ecap.metrics``),
for admins and for the scrape token Prometheus sends (docs/api.md, Metrics)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.api.security import DOCUMENTED_CREDENTIALS

router = APIRouter(tags=["operations"], dependencies=DOCUMENTED_CREDENTIALS)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
