"""Cohorts from ``gold/cohort_retention``: the retention and revenue matrices, one row per
acquisition month, one cell per month since acquisition."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from spark_jobs import lake as tables
from web.api.problems import Problem
from web.api.security import DOCUMENTED_CREDENTIALS
from web.api.state import GoldRead, gold_tables

router = APIRouter(prefix="/cohorts", tags=["cohorts"], dependencies=DOCUMENTED_CREDENTIALS)
Gold = Annotated[GoldRead, Depends(gold_tables(tables.COHORT_RETENTION))]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM.")]


class Cohort(BaseModel):
    cohort_month: str = Field(description="YYYY-MM of the customers' first paid order.")
    customers: int
    retention_rate: list[float] = Field(description="By months since acquisition, from 0.")
    active_customers: list[int]
    orders: list[int]
    revenue_eur: list[float]
    revenue_per_customer_eur: list[float]
    cumulative_revenue_per_customer_eur: list[float]


class Cohorts(BaseModel):
    as_of: date | None
    items: list[Cohort]
    versions: dict[str, int]


@router.get("", summary="Retention and revenue matrices by acquisition month")
def cohorts(
    gold: Gold,
    from_month: Annotated[Month, Query(alias="from")] = None,
    to_month: Annotated[Month, Query(alias="to")] = None,
    max_months: Annotated[
        int | None, Query(ge=0, le=600, description="Cells up to this many months after.")
    ] = None,
) -> Cohorts:
    if from_month and to_month and from_month > to_month:
        raise Problem(
            422,
            "the request is not valid: query.from",
            "make 'from' no later than 'to'",
            errors=[{"field": "query.from", "problem": "after 'to'"}],
        )
    rows = gold.view.rows(
        """
        SELECT strftime(cohort_month, '%Y-%m') AS month, max(cohort_customers) AS customers,
               list(retention_rate ORDER BY months_since_acquisition) AS retention_rate,
               list(active_customers ORDER BY months_since_acquisition) AS active_customers,
               list(orders ORDER BY months_since_acquisition) AS orders,
               list(revenue_eur ORDER BY months_since_acquisition) AS revenue_eur,
               list(revenue_per_customer_eur ORDER BY months_since_acquisition)
                   AS revenue_per_customer_eur,
               list(cumulative_revenue_per_customer_eur ORDER BY months_since_acquisition)
                   AS cumulative_revenue_per_customer_eur,
               max(as_of) AS as_of
        FROM cohort_retention
        WHERE (? IS NULL OR strftime(cohort_month, '%Y-%m') >= ?)
          AND (? IS NULL OR strftime(cohort_month, '%Y-%m') <= ?)
          AND (? IS NULL OR months_since_acquisition <= ?)
        GROUP BY month ORDER BY month
        """,
        [from_month, from_month, to_month, to_month, max_months, max_months],
    )
    return Cohorts(
        as_of=max((row["as_of"] for row in rows), default=None),
        items=[
            Cohort(
                cohort_month=row.pop("month"),
                **{k: v for k, v in row.items() if k != "as_of"},
            )
            for row in rows
        ],
        versions=gold.versions,
    )
