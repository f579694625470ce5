"""What the API's routes share, opened once per process by the app's lifespan.

Routes take these through FastAPI dependencies (:func:`api_state`, :func:`connection`,
:func:`gold_tables`), so a later source joins as one more field here and
one more dependency, not as a global.

:func:`gold_tables` is the data-version dependency: it pins the gold tables a route reads
to one snapshot, puts their versions in the ``ETag``, and answers 304 before any query
when the client's ``If-None-Match`` names them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Query, Request, Response
from redis.asyncio import Redis

from ecap.settings import Settings
from web.api.gold import GoldLake, View, etag
from web.api.live import LiveKpis


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
    gold: GoldLake
    """The gold tables' in-memory snapshot, refreshed on the lifespan."""
    live: LiveKpis | None
    """The live KPIs read from ``analytics-results``; None when no broker is configured."""


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection for the request, given back when it is answered."""
    async with api_state(request).pool.acquire() as conn:
        yield conn


class NotModified(Exception):
    """The client already holds this answer (``If-None-Match`` names its ``ETag``)."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


async def not_modified(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotModified)
    return Response(status_code=304, headers={"ETag": exc.tag})


@dataclass(frozen=True)
class GoldRead:
    """What a route reads its gold figures from, and the versions to report."""

    view: View
    versions: dict[str, int]


def _matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    offered = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in offered or tag in offered


Version = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**31 - 1,
        description="Read version N of the route's first gold table (Delta time travel; "
        "the other tables at their latest); the latest when left out.",
    ),
]


def gold_tables(*names: str) -> Callable[..., GoldRead]:
    """The dependency of a route reading the gold tables ``names`` (the first one is the
    table ``?version=N`` travels back in)."""

    def dependency(
        request: Request,
        response: Response,
        version: Version = None,
    ) -> GoldRead:
        view, versions = api_state(request).gold.read(names, version)
        tag = etag(versions)
        if _matches(request.headers.get("if-none-match"), tag):
            raise NotModified(tag)
        response.headers["ETag"] = tag
        return GoldRead(view, versions)

    return dependency
