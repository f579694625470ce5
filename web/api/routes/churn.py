"""Churn from ``gold/churn_scores``: the customers most likely to leave, and the model that
scored them (its ``metrics.json`` under ``<lake>/models/churn/<version>/``)."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pyarrow import fs
from pydantic import BaseModel, Field

from spark_jobs import lake as tables
from web.api import gold_pages
from web.api.problems import Problem
from web.api.security import DOCUMENTED_CREDENTIALS
from web.api.state import GoldRead, api_state, gold_tables

router = APIRouter(prefix="/churn", tags=["churn"], dependencies=DOCUMENTED_CREDENTIALS)
Gold = Annotated[GoldRead, Depends(gold_tables(tables.CHURN_SCORES))]


class AtRisk(BaseModel):
    customer_id: str
    churn_probability: float
    churn_predicted: bool
    recency_days: float
    orders_total: float
    revenue_total: float = Field(description="Net revenue before the scoring day (EUR).")
    model_version: str


class AtRiskPage(gold_pages.PageInfo):
    items: list[AtRisk]


@router.get("/at-risk", summary="Active customers by churn probability, highest first")
def at_risk(
    gold: Gold,
    min_probability: Annotated[float, Query(ge=0, le=1)] = 0.5,
    limit: gold_pages.Limit = 50,
    cursor: gold_pages.Cursor = None,
    offset: gold_pages.Offset = None,
) -> AtRiskPage:
    rows, total, following = gold_pages.page(
        gold.view,
        "SELECT customer_id, churn_probability, churn_predicted, recency_days, orders_total, "
        "revenue_total, model_version, churn_probability AS _key FROM churn_scores "
        "WHERE churn_probability >= ?",
        [min_probability],
        order="desc",
        limit=limit,
        cursor=cursor,
        offset=offset,
    )
    return AtRiskPage(
        items=[AtRisk(**row) for row in rows], total=total, next=following, versions=gold.versions
    )


class ChurnModel(BaseModel):
    version: str
    trained_at: datetime
    as_of: date
    horizon_days: int
    active_days: int
    train_cutoffs: list[date]
    test_cutoff: date
    model: str
    features: list[str]
    params: dict[str, Any]
    metrics: dict[str, float] = Field(
        description="On the test snapshot: roc_auc, accuracy, precision, recall, sizes."
    )
    scored_customers: int
    versions: dict[str, int]


@lru_cache(maxsize=16)
def _metrics(path: str) -> dict[str, Any]:
    filesystem, inner = fs.FileSystem.from_uri(path)
    with filesystem.open_input_stream(inner) as stream:
        found: dict[str, Any] = orjson.loads(stream.read())
    return found


@router.get("/model", summary="The churn model behind the scores: version and metrics")
def churn_model(gold: Gold, request: Request) -> ChurnModel:
    row = gold.view.one(
        "SELECT any_value(model_version) AS version, count(*) AS n FROM churn_scores"
    )
    if row is None or row["version"] is None:
        raise Problem(
            503,
            "gold table churn_scores is empty: no model has scored customers yet",
            "run `make spark-churn` on a history long enough for its snapshots",
        )
    lake = api_state(request).gold.lake
    path = f"{lake.models('churn')}/{row['version']}/metrics.json"
    try:
        saved = _metrics(path)
    except (FileNotFoundError, OSError) as exc:
        raise Problem(
            503,
            f"the churn model {row['version']} has no metrics at {path}",
            "re-run `make spark-churn`; 'maintain' keeps saved models, check the lake's "
            "models/churn folder",
        ) from exc
    return ChurnModel(**saved, scored_customers=row["n"], versions=gold.versions)
