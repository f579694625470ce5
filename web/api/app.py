"""The REST API application: :func:`create_app` builds it, ``ecap api`` serves it.

Built once per process. At build time the signing key is read (``ecap.auth``; a
deployment without ``ECAP_API_JWT_SECRET`` fails here, with advice) and every route is
checked to have an entry in the role→route matrix (``web.api.access``): a route nobody
thought about cannot be reached. At start-up the lifespan opens the asyncpg pool and Redis
and checks that the database has every migration, reads the gold tables' snapshot and starts
checking them for a new version (``web.api.gold``), and starts reading the live KPIs from
``analytics-results`` when a broker is configured (``web.api.live``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.routing import APIRoute, iter_route_contexts
from redis.asyncio import Redis

from ecap import auth, db, metrics, services, topics
from ecap.db.migrate import pending, pending_advice
from ecap.kafka.broadcast import BroadcastReader
from ecap.settings import Settings, get_settings
from spark_jobs.lake import Lake
from web.api import access, problems
from web.api.gold import POLL_SECONDS, GoldLake
from web.api.live import LiveKpis
from web.api.ratelimit import RateLimits
from web.api.routes import (
    audit,
    cases,
    churn,
    clv,
    cohorts,
    customers,
    health,
    kpis,
    revenue,
    segments,
)
from web.api.routes import auth as auth_routes
from web.api.routes import metrics as metrics_routes
from web.api.security import guard
from web.api.state import ApiState, NotModified, not_modified

POOL_SIZE = 10
log = logging.getLogger(__name__)


class RouteWithoutAccess(RuntimeError):
    """A route has no entry in ``web.api.access.MATRIX``, or an entry names no route."""


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path below ``/api/v1``) the app answers with a route of its own.

    FastAPI keeps an included router as one entry of ``app.routes``;
    ``iter_route_contexts`` walks them to the routes a request can reach.
    """
    return {
        (method, str(context.path).removeprefix(access.PREFIX))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.methods or ()
    }


def _check_matrix(app: FastAPI) -> None:
    routes = api_routes(app)
    missing = sorted(routes - access.MATRIX.keys())
    stale = sorted(access.MATRIX.keys() - routes)
    if missing or stale:
        raise RouteWithoutAccess(
            f"routes without an entry in web/api/access.py: {missing}; entries without a "
            f"route: {stale}; every route needs exactly one entry"
        )


def _redis(settings: Settings) -> Redis | None:
    try:
        return Redis.from_url(services.redis(settings).address)
    except services.ServiceUnavailable:
        return None


def _kafka(settings: Settings) -> str | None:
    try:
        return services.kafka(settings).address
    except services.ServiceUnavailable:
        return None


def create_app(
    settings: Settings | None = None, gold_poll_seconds: float = POLL_SECONDS
) -> FastAPI:
    """The app; ``gold_poll_seconds`` is how often the gold tables are checked for a new
    version (at least every 5 s in service)."""
    settings = settings or get_settings()
    jwt_key = auth.api_jwt_secret(settings)
    scrape_token = auth.api_token(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await db.create_pool(db.dsn(settings), size=POOL_SIZE)
        try:
            async with pool.acquire() as conn:
                missing = await pending(conn)
            if missing:
                raise db.DatabaseUnavailable(pending_advice(missing))
            redis = _redis(settings)
            gold = GoldLake(Lake.at(settings.lake_root), poll_seconds=gold_poll_seconds)
            await asyncio.to_thread(gold.refresh)
            kafka = _kafka(settings)
            live_kpis = LiveKpis() if kafka else None
            app.state.api = ApiState(
                settings, pool, redis, kafka, jwt_key, scrape_token, gold, live_kpis
            )
            tasks = [asyncio.create_task(gold.watch(), name="gold-snapshot")]
            if kafka is not None and live_kpis is not None:
                reader = BroadcastReader(
                    kafka, [topics.ANALYTICS_RESULTS], live_kpis.handle, client_id="ecap-api-kpis"
                )
                live_kpis.loaded = reader.caught_up
                tasks.append(asyncio.create_task(reader.run(), name="live-kpis"))
            for task in tasks:
                task.add_done_callback(_report_failure)
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if redis is not None:
                    await redis.aclose()
        finally:
            await pool.close()

    docs = settings.api_docs_enabled
    app = FastAPI(
        title="ECAP REST API",
        version="1",
        summary="Customer analytics, fraud cases and operations of the e-commerce platform.",
        lifespan=lifespan,
        openapi_url=f"{access.PREFIX}/openapi.json" if docs else None,
        docs_url=f"{access.PREFIX}/docs" if docs else None,
        redoc_url=None,
        dependencies=[Depends(guard)],
    )
    for router in (
        health.router,
        auth_routes.router,
        metrics_routes.router,
        cases.router,
        audit.router,
        customers.router,
        segments.router,
        clv.router,
        churn.router,
        cohorts.router,
        revenue.router,
        kpis.router,
    ):
        app.include_router(router, prefix=access.PREFIX)
    problems.install(app)
    app.add_exception_handler(NotModified, not_modified)
    app.state.rate_limits = RateLimits(settings)
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.middleware("http")(_measure)
    _check_matrix(app)
    return app


def _report_failure(task: asyncio.Task[None]) -> None:
    """A background task that ended with an error is logged at once, not at exit."""
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped", task.get_name(), exc_info=task.exception())


async def _measure(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        template = access.PREFIX + route.path.removeprefix(access.PREFIX)
    else:
        template = "unmatched"
    metrics.API_LATENCY.labels(template).observe(time.perf_counter() - started)
    metrics.API_REQUESTS.labels(template, request.method, str(response.status_code)).inc()
    return response
