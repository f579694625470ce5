"""Revenue from ``gold/daily_revenue`` by day, week (ISO, from Monday) or month, optionally
split by category and region, the dimensions that table holds.

``daily_revenue`` counts a basket over several categories in each, so orders add up across
days and regions but not across categories: ``orders`` is given only when the split
includes ``category``. Distinct customers do not add up across days or categories and are
not given. Cost and margin are null for a period where any line's cost is unknown.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from spark_jobs import lake as tables
from web.api import pagination
from web.api.problems import Problem
from web.api.security import DOCUMENTED_CREDENTIALS
from web.api.state import GoldRead, gold_tables

router = APIRouter(prefix="/revenue", tags=["revenue"], dependencies=DOCUMENTED_CREDENTIALS)
Gold = Annotated[GoldRead, Depends(gold_tables(tables.DAILY_REVENUE))]
Dimension = Literal["category", "region"]
TRUNC = {"day": "day", "week": "week", "month": "month"}


class Period(BaseModel):
    period: date = Field(description="First day of the day, ISO week or month (UTC days).")
    category: str | None = None
    region: str | None = None
    orders: int | None = Field(None, description="Only when split by category.")
    revenue_eur: float
    cost_eur: float | None
    margin_eur: float | None
    margin_rate: float | None


class Revenue(BaseModel):
    granularity: str
    by: list[Dimension]
    items: list[Period]
    total: int = Field(description="Rows over all blocks.")
    versions: dict[str, int]


@router.get("", summary="Revenue, cost and margin by day, week or month")
def revenue(
    gold: Gold,
    granularity: Literal["day", "week", "month"] = "day",
    by: Annotated[list[Dimension], Query(description="Split by these dimensions.")] = [],  # noqa: B006
    from_day: Annotated[date | None, Query(alias="from")] = None,
    to_day: Annotated[date | None, Query(alias="to")] = None,
    category: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = 1000,
    offset: Annotated[int, Query(ge=0, le=pagination.MAX_OFFSET)] = 0,
) -> Revenue:
    if from_day and to_day and from_day > to_day:
        raise Problem(
            422,
            "the request is not valid: query.from",
            "make 'from' no later than 'to'",
            errors=[{"field": "query.from", "problem": "after 'to'"}],
        )
    split = sorted(set(by))
    keys = ", ".join(["period", *split])
    orders = "sum(orders)" if "category" in split else "NULL"
    sql = f"""
        SELECT CAST(date_trunc('{TRUNC[granularity]}', order_date) AS DATE) AS period
               {"".join(f", {d}" for d in split)},
               {orders} AS orders, sum(revenue_eur) AS revenue_eur,
               CASE WHEN count(cost_eur) = count(*) THEN sum(cost_eur) END AS cost_eur,
               CASE WHEN count(margin_eur) = count(*) THEN sum(margin_eur) END AS margin_eur
        FROM daily_revenue
        WHERE (? IS NULL OR order_date >= ?) AND (? IS NULL OR order_date <= ?)
          AND (? IS NULL OR category = ?) AND (? IS NULL OR region = ?)
        GROUP BY {keys}
    """
    params = [from_day, from_day, to_day, to_day, category, category, region, region]
    counted = gold.view.one(f"SELECT count(*) AS n FROM ({sql})", params)
    rows = gold.view.rows(
        f"SELECT * FROM ({sql}) ORDER BY {keys} LIMIT ? OFFSET ?", [*params, limit, offset]
    )
    items = [
        Period(
            **row,
            margin_rate=(
                row["margin_eur"] / row["revenue_eur"]
                if row["margin_eur"] is not None and row["revenue_eur"]
                else None
            ),
        )
        for row in rows
    ]
    return Revenue(
        granularity=granularity,
        by=split,
        items=items,
        total=counted["n"] if counted else 0,
        versions=gold.versions,
    )
