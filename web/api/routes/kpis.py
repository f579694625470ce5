"""Live KPIs from ``analytics-results`` (``web.api.live``): the current windows, a time
series and the funnel, each with its freshness: the age of the newest record it used."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ecap.events import AnalyticsResult, WindowKind
from ecap.kpis.clickstream import funnel_of
from web.api.live import LiveKpis, freshness
from web.api.problems import Problem
from web.api.security import DOCUMENTED_CREDENTIALS
from web.api.state import api_state

router = APIRouter(prefix="/kpis", tags=["live KPIs"], dependencies=DOCUMENTED_CREDENTIALS)
Name = Annotated[str, Query(min_length=1, max_length=60)]


def live(request: Request) -> LiveKpis:
    kpis = api_state(request).live
    if kpis is None:
        raise Problem(
            503,
            "no broker is configured, so the API reads no live KPIs",
            "set ECAP_KAFKA_BOOTSTRAP, or start the embedded stack with 'ecap up'",
        )
    return kpis


Live = Annotated[LiveKpis, Depends(live)]


class Freshness(BaseModel):
    newest: datetime | None = Field(description="computed_at of the newest record used.")
    age_seconds: float | None = Field(description="How old that record is; null: no record.")
    caught_up: bool = Field(
        description="False while the API is still reading the records the topic held at start."
    )


class Point(BaseModel):
    metric: str
    window: WindowKind
    window_start: datetime
    window_end: datetime
    dimension: str
    dimension_value: str
    value: float
    final: bool
    late_events: int
    computed_at: datetime

    @classmethod
    def of(cls, result: AnalyticsResult) -> Point:
        return cls.model_validate(result.model_dump(include=set(cls.model_fields)))


def _freshness(kpis: LiveKpis, results: list[AnalyticsResult]) -> Freshness:
    found = freshness(results)
    return Freshness(newest=found.newest, age_seconds=found.age_seconds, caught_up=kpis.caught_up)


class Current(BaseModel):
    window: WindowKind
    dimension: str
    items: list[Point] = Field(description="Each metric's latest window, by metric and value.")
    freshness: Freshness


@router.get("/current", summary="The latest window of each KPI")
def current(
    kpis: Live,
    window: WindowKind = WindowKind.TUMBLING_1M,
    dimension: Name = "all",
    metric: Annotated[list[str], Query(description="Only these metrics.")] = [],  # noqa: B006
) -> Current:
    results = kpis.latest(window, metric or None, dimension)
    return Current(
        window=window,
        dimension=dimension,
        items=[Point.of(r) for r in results],
        freshness=_freshness(kpis, results),
    )


class Series(BaseModel):
    metric: str
    window: WindowKind
    dimension: str
    points: list[Point] = Field(description="Oldest first; the last two hours of windows.")
    freshness: Freshness


@router.get("/timeseries", summary="One KPI over the windows kept")
def timeseries(
    kpis: Live,
    metric: Name = "revenue",
    window: WindowKind = WindowKind.TUMBLING_1M,
    dimension: Name = "all",
    value: Annotated[str | None, Query(max_length=100, description="One dimension value.")] = None,
) -> Series:
    results = kpis.series(metric, window, dimension, value)
    return Series(
        metric=metric,
        window=window,
        dimension=dimension,
        points=[Point.of(r) for r in results],
        freshness=_freshness(kpis, results),
    )


class Step(BaseModel):
    step: str
    sessions: int
    conversion: float | None = Field(description="Of the previous step's sessions.")


class Funnel(BaseModel):
    window: WindowKind
    window_start: datetime | None
    window_end: datetime | None
    steps: list[Step]
    overall_conversion: float | None
    cart_abandonment: float | None
    freshness: Freshness


@router.get("/funnel", summary="The conversion funnel of the latest window")
def funnel(kpis: Live, window: WindowKind = WindowKind.HOPPING_1H) -> Funnel:
    results = kpis.latest(window, ["funnel_sessions"], "step")
    cells = {(r.metric, r.dimension, r.dimension_value): int(r.value) for r in results}
    answer = funnel_of(cells)
    return Funnel(
        window=window,
        window_start=results[0].window_start if results else None,
        window_end=results[0].window_end if results else None,
        steps=[Step(**step) for step in answer["steps"]],
        overall_conversion=answer["overall_conversion"],
        cart_abandonment=answer["cart_abandonment"],
        freshness=_freshness(kpis, results),
    )
