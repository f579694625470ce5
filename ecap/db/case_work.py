"""Working the fraud cases: the queue, "next case", assignment, status, notes and verdicts.

Every change locks the case's row (``FOR UPDATE``), asks the pure lifecycle
(``ecap.fraud.lifecycle``) whether the move is allowed, and writes the new state, a
``fraud_case_history`` row and an ``audit_log`` row in one transaction. "Next case" takes
the oldest new case of the highest priority with ``FOR UPDATE SKIP LOCKED``: two
investigators asking at the same moment lock different rows, so they never get the same
case, and neither waits for the other. Every query is parameterised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ecap.credentials import Role
from ecap.db import audit
from ecap.db.cases import CASE_COLUMNS, Case, CaseNotFound
from ecap.events import FraudFeedback, Verdict
from ecap.fraud.lifecycle import Resolution, Status, close, move

ASSIGNABLE_ROLES = (Role.INVESTIGATOR.value, Role.ADMIN.value)
"""Roles a case may be assigned to (those that may work cases)."""

_COLUMNS = ", ".join(f"c.{name}" for name in CASE_COLUMNS.split(", "))
_SLA = (
    "c.created_at + s.respond_within AS respond_by, c.created_at + s.resolve_within AS "
    "resolve_by, c.priority_rank"
)


class NotAssignable(ValueError):
    """The assignee is no enabled investigator or admin."""


@dataclass(frozen=True)
class QueueEntry:
    case: Case
    respond_by: datetime
    """The SLA: assigned by then."""
    resolve_by: datetime
    """The SLA: closed by then."""
    priority_rank: int

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> QueueEntry:
        values = dict(row)
        extra = {name: values.pop(name) for name in ("respond_by", "resolve_by", "priority_rank")}
        return cls(Case.from_row(values), **extra)

    @property
    def position(self) -> tuple[int, datetime, int]:
        """Where the case stands in the queue's order (the keyset of pagination)."""
        return (self.priority_rank, self.case.created_at, self.case.case_id)


@dataclass(frozen=True)
class QueueFilter:
    statuses: tuple[Status, ...] = ()
    """Empty: every status."""
    priority: str | None = None
    assignee: str | None = None
    min_age: timedelta | None = None
    max_age: timedelta | None = None


async def queue(
    conn: asyncpg.Connection,
    where: QueueFilter,
    *,
    limit: int,
    after: tuple[int, datetime, int] | None = None,
) -> list[QueueEntry]:
    """Cases in queue order (highest priority, then oldest), from just after ``after``."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS}, {_SLA}
        FROM fraud_cases c JOIN fraud_case_sla s USING (priority)
        WHERE (cardinality($1::text[]) = 0 OR c.status = ANY($1::text[]))
          AND ($2::text IS NULL OR c.priority = $2)
          AND ($3::text IS NULL OR c.assignee = $3)
          AND ($4::interval IS NULL OR c.created_at <= now() - $4::interval)
          AND ($5::interval IS NULL OR c.created_at >= now() - $5::interval)
          AND ($6::smallint IS NULL
               OR (c.priority_rank, c.created_at, c.case_id) > ($6, $7, $8))
        ORDER BY c.priority_rank, c.created_at, c.case_id
        LIMIT $9
        """,
        [status.value for status in where.statuses],
        where.priority,
        where.assignee,
        where.min_age,
        where.max_age,
        *(after or (None, None, None)),
        limit,
    )
    return [QueueEntry.from_row(row) for row in rows]


async def entry(conn: asyncpg.Connection, case_id: int) -> QueueEntry:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, {_SLA} FROM fraud_cases c JOIN fraud_case_sla s USING (priority) "
        "WHERE c.case_id = $1",
        case_id,
    )
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    return QueueEntry.from_row(row)


def _state(case: Case) -> dict[str, Any]:
    return {"status": case.status, "assignee": case.assignee, "resolution": case.resolution}


async def _log(
    conn: asyncpg.Connection, before: Case, after: Case, actor: str, action: str
) -> None:
    await conn.execute(
        "INSERT INTO fraud_case_history (case_id, actor, from_status, to_status, assignee, "
        "resolution) VALUES ($1, $2, $3, $4, $5, $6)",
        after.case_id,
        actor,
        before.status,
        after.status,
        after.assignee,
        after.resolution,
    )
    await audit.record(
        conn,
        actor=actor,
        action=action,
        target=f"case:{after.case_id}",
        before=_state(before),
        after=_state(after),
    )


async def _locked(conn: asyncpg.Connection, case_id: int) -> Case:
    row = await conn.fetchrow(
        f"SELECT {CASE_COLUMNS} FROM fraud_cases WHERE case_id = $1 FOR UPDATE", case_id
    )
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    return Case.from_row(row)


async def _set(
    conn: asyncpg.Connection, case_id: int, status: Status, assignee: str | None
) -> Case:
    row = await conn.fetchrow(
        f"""
        UPDATE fraud_cases SET
            status = $2,
            assignee = $3,
            assigned_at = CASE WHEN $3::text IS NULL THEN NULL
                               WHEN assignee IS DISTINCT FROM $3 THEN now()
                               ELSE assigned_at END,
            investigating_at = CASE WHEN $2 = 'investigating'
                                    THEN coalesce(investigating_at, now())
                                    WHEN $2 = 'new' THEN NULL
                                    ELSE investigating_at END,
            resolution = NULL,
            decided_at = NULL
        WHERE case_id = $1
        RETURNING {CASE_COLUMNS}
        """,
        case_id,
        status.value,
        assignee,
    )
    assert row is not None
    return Case.from_row(row)


async def next_case(conn: asyncpg.Connection, assignee: str, *, actor: str) -> Case | None:
    """Assign the first new case of the queue to ``assignee``; None when none is new."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"""
            WITH picked AS (
                SELECT case_id FROM fraud_cases WHERE status = 'new'
                ORDER BY priority_rank, created_at, case_id
                LIMIT 1 FOR UPDATE SKIP LOCKED
            )
            UPDATE fraud_cases c SET status = 'assigned', assignee = $1, assigned_at = now()
            FROM picked WHERE c.case_id = picked.case_id
            RETURNING {_COLUMNS}
            """,
            assignee,
        )
        if row is None:
            return None
        after = Case.from_row(row)
        before = Case(**{**after.__dict__, "status": Status.NEW.value, "assignee": None})
        await _log(conn, before, after, actor, "case.next")
    return after


async def assign(conn: asyncpg.Connection, case_id: int, assignee: str, *, actor: str) -> Case:
    """Give the case to ``assignee`` (an enabled investigator or admin)."""
    async with conn.transaction():
        if not await conn.fetchval(
            "SELECT true FROM api_users WHERE username = $1 AND disabled_at IS NULL "
            "AND role = ANY($2::text[])",
            assignee,
            list(ASSIGNABLE_ROLES),
        ):
            raise NotAssignable(
                f"{assignee!r} is no enabled investigator or admin; 'ecap users list' shows who is"
            )
        before = await _locked(conn, case_id)
        status = move(Status(before.status), Status.ASSIGNED, assignee)
        after = await _set(conn, case_id, status, assignee)
        await _log(conn, before, after, actor, "case.assign")
    return after


async def change_status(
    conn: asyncpg.Connection, case_id: int, target: Status, *, actor: str
) -> Case:
    """Move the case to ``target`` (not closed: a verdict closes); ``new`` unassigns it."""
    async with conn.transaction():
        before = await _locked(conn, case_id)
        assignee = None if target is Status.NEW else before.assignee
        status = move(Status(before.status), target, assignee)
        after = await _set(conn, case_id, status, assignee)
        await _log(conn, before, after, actor, "case.status")
    return after


@dataclass(frozen=True)
class Note:
    note_id: int
    case_id: int
    author: str
    body: str
    created_at: datetime


async def add_note(conn: asyncpg.Connection, case_id: int, body: str, *, author: str) -> Note:
    async with conn.transaction():
        await _locked(conn, case_id)
        row = await conn.fetchrow(
            "INSERT INTO fraud_case_notes (case_id, author, body) VALUES ($1, $2, $3) "
            "RETURNING note_id, case_id, author, body, created_at",
            case_id,
            author,
            body,
        )
        assert row is not None
        note = Note(**dict(row))
        await audit.record(
            conn,
            actor=author,
            action="case.note",
            target=f"case:{case_id}",
            before=None,
            after={"note_id": note.note_id, "body": body},
        )
    return note


async def notes(conn: asyncpg.Connection, case_id: int) -> list[Note]:
    rows = await conn.fetch(
        "SELECT note_id, case_id, author, body, created_at FROM fraud_case_notes "
        "WHERE case_id = $1 ORDER BY note_id",
        case_id,
    )
    return [Note(**dict(row)) for row in rows]


async def history(conn: asyncpg.Connection, case_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT at, actor, from_status, to_status, assignee, resolution "
        "FROM fraud_case_history WHERE case_id = $1 ORDER BY entry_id",
        case_id,
    )
    return [dict(row) for row in rows]


async def verdicts(conn: asyncpg.Connection, case_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT verdict, note, decided_by, decided_at, published_at FROM fraud_verdicts "
        "WHERE case_id = $1 ORDER BY verdict_id",
        case_id,
    )
    return [dict(row) for row in rows]


@dataclass(frozen=True)
class RecordedVerdict:
    verdict_id: int
    previous_status: str
    feedback: FraudFeedback
    case: Case


async def record_verdict(
    conn: asyncpg.Connection,
    case_id: int,
    verdict: Verdict,
    *,
    note: str | None,
    decided_by: str,
) -> RecordedVerdict:
    """Store a verdict and close the case with its resolution; return the feedback to
    publish.

    A closed case whose last verdict is the same and never reached ``fraud-feedback``
    (the broker refused it) returns that verdict again, so sending the same verdict again
    publishes it; any other verdict on a closed case is refused (reopen it first).
    """
    resolution = Resolution.FRAUD if verdict is Verdict.CONFIRMED else Resolution.LEGITIMATE
    async with conn.transaction():
        before = await _locked(conn, case_id)
        last = await conn.fetchrow(
            "SELECT verdict_id, verdict, note, decided_by, decided_at, published_at "
            "FROM fraud_verdicts "
            "WHERE case_id = $1 ORDER BY verdict_id DESC LIMIT 1",
            case_id,
        )
        if (
            before.status == Status.CLOSED.value
            and last is not None
            and last["published_at"] is None
            and last["verdict"] == verdict.value
        ):
            feedback = _feedback(
                before, verdict, last["note"], last["decided_by"], last["decided_at"]
            )
            return RecordedVerdict(last["verdict_id"], before.status, feedback, before)
        status = close(Status(before.status))
        verdict_row = await conn.fetchrow(
            """
            INSERT INTO fraud_verdicts (case_id, verdict, note, decided_by)
            VALUES ($1, $2, $3, $4)
            RETURNING verdict_id, decided_at
            """,
            case_id,
            verdict.value,
            note,
            decided_by,
        )
        assert verdict_row is not None
        row = await conn.fetchrow(
            f"UPDATE fraud_cases SET status = $2, resolution = $3, decided_at = $4 "
            f"WHERE case_id = $1 RETURNING {CASE_COLUMNS}",
            case_id,
            status.value,
            resolution.value,
            verdict_row["decided_at"],
        )
        assert row is not None
        after = Case.from_row(row)
        await _log(conn, before, after, decided_by, "case.verdict")
    feedback = _feedback(after, verdict, note, decided_by, verdict_row["decided_at"])
    return RecordedVerdict(verdict_row["verdict_id"], before.status, feedback, after)


def _feedback(
    case: Case, verdict: Verdict, note: str | None, decided_by: str, decided_at: datetime
) -> FraudFeedback:
    return FraudFeedback(
        case_id=case.case_id,
        alert_id=case.alert_id,
        transaction_id=case.transaction_id,
        user_id=case.user_id,
        merchant_id=case.merchant_id,
        verdict=verdict,
        reasons=[str(reason["code"]) for reason in case.reasons],
        features=case.features,
        note=note,
        decided_by=decided_by,
        decided_at=decided_at,
    )


async def mark_published(conn: asyncpg.Connection, verdict_id: int) -> None:
    await conn.execute(
        "UPDATE fraud_verdicts SET published_at = now() WHERE verdict_id = $1", verdict_id
    )
