"""``GET /health``: the status word and code for anyone (probes, load balancers); with
credentials (any role, or the scrape token), each dependency's state too.

PostgreSQL down is ``down`` (503): no route but this one can answer. Redis or the broker
down is ``degraded`` (200): cases can still be read and worked, verdicts not published.
With credentials the answer also shows the gold snapshot (each table's version, the tables
not built yet) and the live KPIs' freshness; neither changes the status word, since a
fresh install has no gold tables and a quiet shop publishes no KPI.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ecap import services
from web.api.gold import GOLD_TABLES
from web.api.live import freshness
from web.api.problems import Problem
from web.api.security import authenticate, scrape_token_sent
from web.api.state import ApiState, api_state

router = APIRouter(tags=["health"])
TIMEOUT_S = 2.0


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, TIMEOUT_S)
    except Exception as exc:  # any failure is the state reported, never an error here
        return {"state": "down", "error": type(exc).__name__}
    return {"state": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def _postgres(state: ApiState) -> None:
    async with state.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


async def _kafka(state: ApiState) -> None:
    await asyncio.to_thread(services.reachable_kafka, state.settings, TIMEOUT_S)


async def _with_credentials(request: Request) -> bool:
    if scrape_token_sent(request):
        return True
    try:
        return await authenticate(request) is not None
    except Problem:  # wrong credentials get the public answer, as a probe with none does
        return False


@router.get("/health", summary="Status word and code; dependencies with credentials")
async def health(request: Request) -> JSONResponse:
    state = api_state(request)
    checks = {"postgres": await _timed(_postgres(state))}
    if state.redis is None:
        checks["redis"] = {"state": "not configured"}
    else:
        checks["redis"] = await _timed(state.redis.ping())
    if state.kafka_bootstrap is None:
        checks["kafka"] = {"state": "not configured"}
    else:
        checks["kafka"] = await _timed(_kafka(state))
    if checks["postgres"]["state"] != "up":
        status, code = "down", 503
    elif any(check["state"] == "down" for check in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    body: dict[str, Any] = {"status": status}
    if await _with_credentials(request):
        body["dependencies"] = checks
        body["reporting_timezone"] = state.settings.reporting_timezone
        body["gold"] = _gold(state)
        body["live_kpis"] = _live(state)
    return JSONResponse(body, status_code=code)


def _gold(state: ApiState) -> dict[str, Any]:
    versions = dict(state.gold.snapshot.versions)
    return {
        "lake": state.gold.lake.root,
        "versions": versions,
        "missing": [name for name in GOLD_TABLES if name not in versions],
    }


def _live(state: ApiState) -> dict[str, Any]:
    if state.live is None:
        return {"state": "not configured"}
    newest = freshness(state.live.newest())
    return {
        "caught_up": state.live.caught_up,
        "newest": newest.newest.isoformat() if newest.newest else None,
        "age_seconds": newest.age_seconds,
    }
