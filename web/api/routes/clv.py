"""Customer lifetime value from ``gold/clv``: its distribution and the top customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from spark_jobs import lake as tables
from web.api import gold_pages
from web.api.security import DOCUMENTED_CREDENTIALS
from web.api.state import GoldRead, gold_tables

router = APIRouter(prefix="/clv", tags=["clv"], dependencies=DOCUMENTED_CREDENTIALS)
Gold = Annotated[GoldRead, Depends(gold_tables(tables.CLV))]


class Bucket(BaseModel):
    low_eur: float = Field(description="Inclusive.")
    high_eur: float = Field(description="Exclusive, except in the last bucket.")
    customers: int
    clv_eur: float = Field(description="Sum of the bucket's CLV.")


class Distribution(BaseModel):
    customers: int
    total_clv_eur: float
    mean_clv_eur: float | None
    median_clv_eur: float | None
    p90_clv_eur: float | None
    buckets: list[Bucket] = Field(description="Equal-width buckets from the least to the most.")
    versions: dict[str, int]


@router.get("/distribution", summary="CLV histogram and summary")
def distribution(
    gold: Gold,
    buckets: Annotated[int, Query(ge=1, le=200, description="Number of buckets.")] = 20,
) -> Distribution:
    summary = gold.view.one(
        """
        SELECT count(*) AS customers, coalesce(sum(clv_eur), 0) AS total,
               avg(clv_eur) AS mean, quantile_cont(clv_eur, 0.5) AS median,
               quantile_cont(clv_eur, 0.9) AS p90, min(clv_eur) AS low, max(clv_eur) AS high
        FROM clv WHERE clv_eur IS NOT NULL
        """
    )
    assert summary is not None
    found: list[Bucket] = []
    if summary["customers"]:
        low, high = float(summary["low"]), float(summary["high"])
        width = (high - low) / buckets or 1.0
        counted = {
            row["b"]: row
            for row in gold.view.rows(
                """
                SELECT least(CAST(floor((clv_eur - ?) / ?) AS INTEGER), ? - 1) AS b,
                       count(*) AS customers, sum(clv_eur) AS clv_eur
                FROM clv WHERE clv_eur IS NOT NULL GROUP BY b
                """,
                [low, width, buckets],
            )
        }
        found = [
            Bucket(
                low_eur=low + k * width,
                high_eur=high if k == buckets - 1 else low + (k + 1) * width,
                customers=counted[k]["customers"] if k in counted else 0,
                clv_eur=counted[k]["clv_eur"] if k in counted else 0.0,
            )
            for k in range(buckets)
        ]
    return Distribution(
        customers=summary["customers"],
        total_clv_eur=summary["total"],
        mean_clv_eur=summary["mean"],
        median_clv_eur=summary["median"],
        p90_clv_eur=summary["p90"],
        buckets=found,
        versions=gold.versions,
    )


class TopCustomer(BaseModel):
    customer_id: str
    clv_eur: float
    clv_margin_eur: float | None
    p_alive: float
    expected_purchases: float
    orders: int
    revenue_eur: float


class TopPage(gold_pages.PageInfo):
    items: list[TopCustomer]


@router.get("/top", summary="Customers by CLV, highest first")
def top(
    gold: Gold,
    limit: gold_pages.Limit = 50,
    cursor: gold_pages.Cursor = None,
    offset: gold_pages.Offset = None,
) -> TopPage:
    rows, total, following = gold_pages.page(
        gold.view,
        "SELECT customer_id, clv_eur, clv_margin_eur, p_alive, expected_purchases, orders, "
        "revenue_eur, clv_eur AS _key FROM clv WHERE clv_eur IS NOT NULL",
        [],
        order="desc",
        limit=limit,
        cursor=cursor,
        offset=offset,
    )
    return TopPage(
        items=[TopCustomer(**row) for row in rows],
        total=total,
        next=following,
        versions=gold.versions,
    )
