"""What the API's routes share, opened once per process by the app's lifespan.

Routes take these through FastAPI dependencies (:func:`api_state`, :func:`connection`), so
a later source (the Delta snapshot of the gold tables, the live KPIs) joins as one more
field here and one more dependency, not as a global.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from fastapi import Request
from redis.asyncio import Redis

from ecap.settings import Settings


@dataclass(frozen=True)
class ApiState:
    settings: Settings
    pool: asyncpg.Pool
    """The one asyncpg pool of the process."""
    redis: Redis | None
    """None when no Redis is configured and no embedded one runs."""
    kafka_bootstrap: str | None
    """Where verdicts are published; None when no broker is configured or embedded."""
    jwt_key: bytes
    scrape_token: str
    """The workers' bearer token (``ECAP_API_TOKEN``), which Prometheus sends."""


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection for the request, given back when it is answered."""
    async with api_state(request).pool.acquire() as conn:
        yield conn
