"""RFM segments from ``gold/rfm``: how many customers each holds and what they spent."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from spark_jobs import lake as tables
from spark_jobs.models.rfm import SEGMENTS
from web.api.security import DOCUMENTED_CREDENTIALS
from web.api.state import GoldRead, gold_tables

router = APIRouter(prefix="/segments", tags=["segments"], dependencies=DOCUMENTED_CREDENTIALS)
Gold = Annotated[GoldRead, Depends(gold_tables(tables.RFM))]


class Segment(BaseModel):
    segment: str
    customers: int
    customer_share: float = Field(description="Of all customers, 0-1.")
    revenue_eur: float = Field(description="Net revenue of the segment's paid orders.")
    revenue_share: float
    avg_recency_days: float
    avg_frequency: float
    avg_monetary_eur: float


class Segments(BaseModel):
    as_of: date
    customers: int
    items: list[Segment] = Field(description="Every segment, best first; empty ones with 0.")
    versions: dict[str, int]


@router.get("", summary="The RFM segments with their customers and revenue")
def segments(gold: Gold) -> Segments:
    rows = gold.view.rows(
        """
        SELECT segment, count(*) AS customers, sum(monetary_eur) AS revenue_eur,
               avg(recency_days) AS avg_recency_days, avg(frequency) AS avg_frequency,
               avg(monetary_eur) AS avg_monetary_eur, max(as_of) AS as_of
        FROM rfm GROUP BY segment
        """
    )
    by_name = {row["segment"]: row for row in rows}
    customers = sum(row["customers"] for row in rows)
    revenue = sum(row["revenue_eur"] for row in rows)
    items = []
    for name in SEGMENTS:
        row = by_name.get(name)
        items.append(
            Segment(
                segment=name,
                customers=row["customers"] if row else 0,
                customer_share=row["customers"] / customers if row and customers else 0.0,
                revenue_eur=row["revenue_eur"] if row else 0.0,
                revenue_share=row["revenue_eur"] / revenue if row and revenue else 0.0,
                avg_recency_days=row["avg_recency_days"] if row else 0.0,
                avg_frequency=row["avg_frequency"] if row else 0.0,
                avg_monetary_eur=row["avg_monetary_eur"] if row else 0.0,
            )
        )
    return Segments(
        as_of=max(row["as_of"] for row in rows) if rows else date.min,
        customers=customers,
        items=items,
        versions=gold.versions,
    )
