"""Customers from the gold tables: the filtered list and one customer's profile.

A customer is a row of ``gold/rfm`` (everyone with a paid order up to the as-of day),
with their ``gold/clv`` and, when active, ``gold/churn_scores`` row. The profile adds the
customer's fraud alerts and cases from PostgreSQL (every alert opens one case).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ecap.db.cases import cases_of_user
from spark_jobs import lake as tables
from spark_jobs.models.rfm import SEGMENTS
from web.api import gold_pages
from web.api.problems import Problem
from web.api.security import DOCUMENTED_CREDENTIALS
from web.api.state import GoldRead, connection, gold_tables

router = APIRouter(prefix="/customers", tags=["customers"], dependencies=DOCUMENTED_CREDENTIALS)

READS = (tables.RFM, tables.CLV, tables.CHURN_SCORES)
Gold = Annotated[GoldRead, Depends(gold_tables(*READS))]
Conn = Annotated[asyncpg.Connection, Depends(connection)]
CASES_SHOWN = 50

SORTS = {
    "clv_eur": "c.clv_eur",
    "monetary_eur": "r.monetary_eur",
    "frequency": "r.frequency",
    "recency_days": "r.recency_days",
    "churn_probability": "s.churn_probability",
}

LIST_COLUMNS = """
    r.customer_id, r.segment, r.recency_days, r.frequency, r.monetary_eur,
    r.r_score, r.f_score, r.m_score, c.clv_eur, c.p_alive,
    strftime(c.first_order, '%Y-%m') AS cohort, s.churn_probability, s.churn_predicted
"""
FROM = """
    FROM rfm r LEFT JOIN clv c USING (customer_id) LEFT JOIN churn_scores s USING (customer_id)
"""


class CustomerRow(BaseModel):
    customer_id: str
    segment: str
    recency_days: int
    frequency: int
    monetary_eur: float
    r_score: int
    f_score: int
    m_score: int
    clv_eur: float | None = Field(description="12-month discounted CLV; null if not modelled.")
    p_alive: float | None
    cohort: str | None = Field(description="Month of the first paid order, YYYY-MM.")
    churn_probability: float | None = Field(description="Null for customers not active.")
    churn_predicted: bool | None


class CustomerPage(gold_pages.PageInfo):
    items: list[CustomerRow]


def _bad(field: str, problem: str, hint: str) -> Problem:
    return Problem(
        422,
        f"the request is not valid: query.{field}",
        hint,
        errors=[{"field": f"query.{field}", "problem": problem}],
    )


def _range(field: str, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        raise _bad(f"min_{field}", f"greater than max_{field}", f"make min_{field} ≤ max_{field}")


@router.get("", summary="Customers, filtered, sorted and paged")
def customer_list(
    gold: Gold,
    segment: Annotated[
        list[str], Query(description=f"Any of these RFM segments: {', '.join(SEGMENTS)}.")
    ] = [],  # noqa: B006
    min_clv: Annotated[float | None, Query(description="CLV at least (EUR).")] = None,
    max_clv: Annotated[float | None, Query(description="CLV at most (EUR).")] = None,
    min_churn_probability: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_churn_probability: Annotated[float | None, Query(ge=0, le=1)] = None,
    cohort: Annotated[
        str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="First paid month.")
    ] = None,
    sort: Literal[tuple(SORTS)] = "clv_eur",  # type: ignore[valid-type]
    order: gold_pages.Order = "desc",
    limit: gold_pages.Limit = 50,
    cursor: gold_pages.Cursor = None,
    offset: gold_pages.Offset = None,
) -> CustomerPage:
    unknown = sorted(set(segment) - set(SEGMENTS))
    if unknown:
        raise _bad("segment", f"no segment {unknown}", f"use one of: {', '.join(SEGMENTS)}")
    _range("clv", min_clv, max_clv)
    _range("churn_probability", min_churn_probability, max_churn_probability)
    where, params = ["TRUE"], []  # type: list[str], list[Any]
    if segment:
        where.append("list_contains(?, r.segment)")
        params.append(segment)
    for column, low, high in (
        ("c.clv_eur", min_clv, max_clv),
        ("s.churn_probability", min_churn_probability, max_churn_probability),
    ):
        if low is not None:
            where.append(f"{column} >= ?")
            params.append(low)
        if high is not None:
            where.append(f"{column} <= ?")
            params.append(high)
    if cohort is not None:
        where.append("strftime(c.first_order, '%Y-%m') = ?")
        params.append(cohort)
    sql = (
        f"SELECT {LIST_COLUMNS}, coalesce(CAST({SORTS[sort]} AS DOUBLE), '-infinity'::DOUBLE) "
        f"AS _key {FROM} WHERE {' AND '.join(where)}"
    )
    rows, total, following = gold_pages.page(
        gold.view, sql, params, order=order, limit=limit, cursor=cursor, offset=offset
    )
    return CustomerPage(
        items=[CustomerRow(**row) for row in rows],
        total=total,
        next=following,
        versions=gold.versions,
    )


class Rfm(BaseModel):
    recency_days: int
    frequency: int
    monetary_eur: float
    r_score: int
    f_score: int
    m_score: int
    fm_score: int
    segment: str
    as_of: date


class Clv(BaseModel):
    first_order: datetime
    last_order: datetime
    orders: int
    revenue_eur: float
    margin_eur: float | None
    p_alive: float
    expected_purchases: float
    expected_avg_spend_eur: float
    clv_eur: float
    clv_margin_eur: float | None
    horizon_days: int
    as_of: date


class Churn(BaseModel):
    churn_probability: float
    churn_predicted: bool
    model_version: str
    as_of: date


class CaseRef(BaseModel):
    """One alert on the customer and the case it opened."""

    case_id: int
    alert_id: str
    transaction_id: str
    status: str
    resolution: str | None
    priority: str
    score: float
    reason_codes: list[str]
    detection_time: datetime


class Profile(BaseModel):
    customer_id: str
    rfm: Rfm
    clv: Clv | None = Field(description="Null when the CLV job did not model the customer.")
    churn: Churn | None = Field(description="Null when the customer is not active.")
    cases: list[CaseRef] = Field(description=f"The newest {CASES_SHOWN} alerts and cases.")
    versions: dict[str, int]


def _gold_profile(gold: GoldRead, customer_id: str) -> tuple[dict[str, Any] | None, ...]:
    view = gold.view
    return (
        view.one("SELECT * EXCLUDE (customer_id) FROM rfm WHERE customer_id = ?", [customer_id]),
        view.one("SELECT * EXCLUDE (customer_id) FROM clv WHERE customer_id = ?", [customer_id]),
        view.one(
            "SELECT churn_probability, churn_predicted, model_version, as_of FROM churn_scores "
            "WHERE customer_id = ?",
            [customer_id],
        ),
    )


@router.get("/{customer_id}", summary="One customer: RFM, CLV, churn, alerts and cases")
async def customer_profile(
    gold: Gold,
    conn: Conn,
    customer_id: Annotated[str, Path(min_length=1, max_length=200)],
) -> Profile:
    rfm, clv, churn = await run_in_threadpool(_gold_profile, gold, customer_id)
    if rfm is None:
        raise Problem(
            404,
            f"no customer {customer_id!r} in gold table rfm (version {gold.versions['rfm']})",
            "GET /api/v1/customers lists the customers; a customer appears after their first "
            "paid order is modelled",
        )
    found = await cases_of_user(conn, customer_id, CASES_SHOWN)
    return Profile(
        customer_id=customer_id,
        rfm=Rfm(**rfm),
        clv=Clv(**clv) if clv else None,
        churn=Churn(**churn) if churn else None,
        cases=[
            CaseRef(
                case_id=case.case_id,
                alert_id=case.alert_id,
                transaction_id=case.transaction_id,
                status=case.status,
                resolution=case.resolution,
                priority=case.priority,
                score=case.score,
                reason_codes=[str(reason["code"]) for reason in case.reasons],
                detection_time=case.detection_time,
            )
            for case in found
        ],
        versions=gold.versions,
    )
