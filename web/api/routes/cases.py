"""Fraud cases: the queue, "next case", one case, and working it (assign, status, notes,
verdict). The lifecycle is ``ecap.fraud.lifecycle``; the queries ``ecap.db.case_work``; a
verdict reaches ``fraud-feedback`` through ``ecap.fraudops.verdicts``, as from
``ecap cases verdict``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from ecap.db import case_work
from ecap.db.cases import CaseNotFound
from ecap.fraud.lifecycle import Resolution, Status, TransitionRefused
from ecap.fraudops import verdicts
from web.api import access, pagination
from web.api.masking import mask_text
from web.api.problems import Problem
from web.api.security import DOCUMENTED_CREDENTIALS, Principal, caller
from web.api.state import ApiState, api_state, connection

router = APIRouter(prefix="/cases", tags=["cases"], dependencies=DOCUMENTED_CREDENTIALS)

Conn = Annotated[asyncpg.Connection, Depends(connection)]
Caller = Annotated[Principal, Depends(caller)]
CaseId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class Transaction(BaseModel):
    """The alerted transaction, as the alert carried it."""

    transaction_id: str
    user_id: str
    merchant_id: str
    amount: str = Field(description="Exact decimal, in the transaction's currency.")
    currency: str
    event_time: datetime
    detection_time: datetime


class CaseSummary(BaseModel):
    case_id: int
    alert_id: str
    status: Status
    resolution: Resolution | None
    assignee: str | None
    priority: str
    score: float
    created_at: datetime
    assigned_at: datetime | None
    investigating_at: datetime | None
    decided_at: datetime | None
    respond_by: datetime = Field(description="SLA: to be assigned by then.")
    resolve_by: datetime = Field(description="SLA: to be closed by then.")
    transaction: Transaction
    reasons: list[dict[str, Any]] = Field(description="The rules and models that fired.")

    @classmethod
    def of(cls, entry: case_work.QueueEntry) -> CaseSummary:
        case = entry.case
        return cls(
            case_id=case.case_id,
            alert_id=case.alert_id,
            status=Status(case.status),
            resolution=Resolution(case.resolution) if case.resolution else None,
            assignee=case.assignee,
            priority=case.priority,
            score=case.score,
            created_at=case.created_at,
            assigned_at=case.assigned_at,
            investigating_at=case.investigating_at,
            decided_at=case.decided_at,
            respond_by=entry.respond_by,
            resolve_by=entry.resolve_by,
            transaction=Transaction(
                transaction_id=case.transaction_id,
                user_id=case.user_id,
                merchant_id=case.merchant_id,
                amount=str(case.amount),
                currency=case.currency,
                event_time=case.event_time,
                detection_time=case.detection_time,
            ),
            reasons=case.reasons,
        )


class CasePage(BaseModel):
    items: list[CaseSummary]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")


class NoteOut(BaseModel):
    note_id: int
    author: str
    body: str
    created_at: datetime


class HistoryEntry(BaseModel):
    at: datetime
    actor: str
    from_status: Status
    to_status: Status
    assignee: str | None
    resolution: Resolution | None


class VerdictOut(BaseModel):
    verdict: str = Field(description="As published to fraud-feedback: confirmed or false_positive.")
    note: str | None
    decided_by: str
    decided_at: datetime
    published_at: datetime | None


class CaseDetail(CaseSummary):
    ruleset_version: int
    model_version: str
    features: dict[str, float] | None
    notes: list[NoteOut]
    history: list[HistoryEntry]
    verdicts: list[VerdictOut]


class AssignRequest(BaseModel):
    assignee: str | None = Field(None, description="User name; yourself when left out.")


class StatusRequest(BaseModel):
    status: Status


class NoteRequest(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)


class VerdictRequest(BaseModel):
    resolution: Resolution
    note: str | None = Field(None, max_length=2000)


@contextmanager
def _case_errors(case_id: int) -> Iterator[None]:
    try:
        yield
    except CaseNotFound as exc:
        raise Problem(404, f"no case {case_id}", "GET /api/v1/cases lists the cases") from exc
    except TransitionRefused as exc:
        raise Problem(
            409, str(exc), "docs/api.md, Case lifecycle, shows the allowed moves"
        ) from exc
    except case_work.NotAssignable as exc:
        raise Problem(
            422,
            str(exc),
            "assign to an enabled investigator or admin",
            errors=[{"field": "body.assignee", "problem": str(exc)}],
        ) from exc


async def _summary(conn: asyncpg.Connection, case_id: int) -> CaseSummary:
    with _case_errors(case_id):
        return CaseSummary.of(await case_work.entry(conn, case_id))


@router.get("", summary="The queue: highest priority first, then oldest")
async def queue(
    conn: Conn,
    status: Annotated[list[Status], Query(description="Any of these statuses.")] = [],  # noqa: B006
    priority: Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"] | None = None,
    assignee: Annotated[str | None, Query(max_length=63)] = None,
    min_age: Annotated[
        timedelta | None, Query(description="Created at least this long ago (ISO 8601: PT1H).")
    ] = None,
    max_age: Annotated[
        timedelta | None, Query(description="Created at most this long ago (ISO 8601: P1D).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CasePage:
    where = case_work.QueueFilter(tuple(status), priority, assignee, min_age, max_age)
    after = pagination.decode(cursor) if cursor is not None else None
    entries = await case_work.queue(conn, where, limit=limit + 1, after=after)
    page = entries[:limit]
    more = len(entries) > limit
    return CasePage(
        items=[CaseSummary.of(entry) for entry in page],
        next=pagination.encode(page[-1].position) if more else None,
    )


@router.post(
    "/next",
    summary="Take the next new case (assigned to you); 204 when none is new",
    response_model=CaseSummary,
    responses={204: {"description": "No new case."}},
)
async def next_case(conn: Conn, who: Caller) -> CaseSummary | Response:
    case = await case_work.next_case(conn, who.username, actor=who.actor)
    if case is None:
        return Response(status_code=204)
    return await _summary(conn, case.case_id)


@router.get("/{case_id}", summary="One case: transaction, reasons, notes, history, verdicts")
async def case_detail(case_id: CaseId, conn: Conn, who: Caller) -> CaseDetail:
    summary = await _summary(conn, case_id)
    case = (await case_work.entry(conn, case_id)).case
    clear = who.role in access.SEES_PERSONAL_DATA

    def text(value: str | None) -> str | None:
        return value if clear or value is None else mask_text(value)

    notes = await case_work.notes(conn, case_id)
    return CaseDetail(
        **summary.model_dump(),
        ruleset_version=case.ruleset_version,
        model_version=case.model_version,
        features=case.features,
        notes=[
            NoteOut(
                note_id=n.note_id, author=n.author, body=text(n.body) or "", created_at=n.created_at
            )
            for n in notes
        ],
        history=[HistoryEntry(**row) for row in await case_work.history(conn, case_id)],
        verdicts=[
            VerdictOut(**{**row, "note": text(row["note"])})
            for row in await case_work.verdicts(conn, case_id)
        ],
    )


@router.post("/{case_id}/assign", summary="Assign the case (to yourself by default)")
async def assign(case_id: CaseId, body: AssignRequest, conn: Conn, who: Caller) -> CaseSummary:
    with _case_errors(case_id):
        await case_work.assign(conn, case_id, body.assignee or who.username, actor=who.actor)
    return await _summary(conn, case_id)


@router.post("/{case_id}/status", summary="Change the status (a verdict closes)")
async def change_status(
    case_id: CaseId, body: StatusRequest, conn: Conn, who: Caller
) -> CaseSummary:
    with _case_errors(case_id):
        await case_work.change_status(conn, case_id, body.status, actor=who.actor)
    return await _summary(conn, case_id)


@router.post("/{case_id}/notes", status_code=201, summary="Add a note")
async def add_note(case_id: CaseId, body: NoteRequest, conn: Conn, who: Caller) -> NoteOut:
    with _case_errors(case_id):
        note = await case_work.add_note(conn, case_id, body.body, author=who.actor)
    return NoteOut(
        note_id=note.note_id, author=note.author, body=note.body, created_at=note.created_at
    )


@router.post(
    "/{case_id}/verdict",
    summary="Record the verdict: closes the case and publishes it to fraud-feedback",
)
async def verdict(
    case_id: CaseId,
    body: VerdictRequest,
    conn: Conn,
    who: Caller,
    state: Annotated[ApiState, Depends(api_state)],
) -> CaseSummary:
    if state.kafka_bootstrap is None:
        raise Problem(
            503,
            "no broker to publish the verdict to",
            "set ECAP_KAFKA_BOOTSTRAP or start the embedded stack with 'ecap up', then "
            "restart the API",
        )
    with _case_errors(case_id):
        try:
            await verdicts.decide(
                conn,
                state.kafka_bootstrap,
                case_id,
                body.resolution.verdict,
                note=body.note,
                decided_by=who.username,
            )
        except verdicts.FeedbackNotPublished as exc:
            raise Problem(503, str(exc), "send the same verdict again") from exc
    return await _summary(conn, case_id)
