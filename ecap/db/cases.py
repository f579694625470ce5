"""Fraud cases in PostgreSQL: how the alerts worker writes them and how they are read.

A case is an alert an investigator can decide on; it is written once per transaction
(``ON CONFLICT (transaction_id) DO NOTHING``), so an alert delivered twice, or by two
workers, stays one case. Its lifecycle (assignment, status, notes, verdicts) is
``ecap.db.case_work``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from ecap.events import FraudAlert

CASE_COLUMNS = (
    "case_id, alert_id, transaction_id, user_id, merchant_id, amount, currency, score, "
    "priority, reasons, ruleset_version, model_version, features, event_time, "
    "detection_time, created_at, status, decided_at, resolution, assignee, assigned_at, "
    "investigating_at"
)

_INSERT = """
INSERT INTO fraud_cases (
    alert_id, transaction_id, user_id, merchant_id, amount, currency, score, priority,
    reasons, ruleset_version, model_version, features, event_time, detection_time
)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::text[],
    $7::float8[], $8::text[], $9::jsonb[], $10::int[], $11::text[], $12::jsonb[],
    $13::timestamptz[], $14::timestamptz[]
)
ON CONFLICT (transaction_id) DO NOTHING
"""


class SchemaMissing(RuntimeError):
    """The database has no fraud tables yet."""


class CaseNotFound(LookupError):
    """No fraud case has the id asked for."""


async def check_schema(conn: asyncpg.Connection) -> None:
    """Fail with advice when ``ecap db migrate`` has not been run on this database."""
    if not await conn.fetchval("SELECT to_regclass('fraud_cases') IS NOT NULL"):
        raise SchemaMissing(
            "the database has no fraud_cases table; run 'ecap db migrate' against it first"
        )


async def insert_alerts(
    conn: asyncpg.Connection | asyncpg.Pool, alerts: list[tuple[FraudAlert, bytes | None]]
) -> int:
    """Open a case per alert (``features`` as JSON bytes or None); return cases created."""
    if not alerts:
        return 0
    columns: list[list[Any]] = [[] for _ in range(14)]
    for alert, features in alerts:
        row = (
            alert.alert_id,
            alert.transaction_id,
            alert.user_id,
            alert.merchant_id,
            # The shortest repr of the amount is the decimal its producer wrote
            # (ecap.events, "Money"); the column is numeric, unrounded (0002).
            Decimal(str(alert.amount)),
            alert.currency,
            alert.score,
            alert.priority.value,
            orjson.dumps([r.model_dump(mode="json") for r in alert.reasons]).decode(),
            alert.ruleset_version,
            alert.model_version,
            features.decode() if features is not None else None,
            alert.event_time,
            alert.detection_time,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    status: str = await conn.execute(_INSERT, *columns)
    return int(status.rsplit(" ", 1)[-1])


@dataclass(frozen=True)
class Case:
    case_id: int
    alert_id: str
    transaction_id: str
    user_id: str
    merchant_id: str
    amount: Decimal
    currency: str
    score: float
    priority: str
    reasons: list[dict[str, Any]]
    ruleset_version: int
    model_version: str
    features: dict[str, float] | None
    event_time: datetime
    detection_time: datetime
    created_at: datetime
    status: str
    decided_at: datetime | None
    resolution: str | None
    assignee: str | None
    assigned_at: datetime | None
    investigating_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Case:
        values = dict(row)
        values["reasons"] = orjson.loads(values["reasons"])
        if values["features"] is not None:
            values["features"] = orjson.loads(values["features"])
        values["currency"] = values["currency"].strip()
        # asyncpg reads numeric 15000000000 as Decimal('1.50E+10'): the same number, written
        # out here in plain digits, as stored.
        values["amount"] = Decimal(format(values["amount"], "f"))
        return cls(**values)


async def list_cases(
    conn: asyncpg.Connection,
    *,
    status: str | None = "open",
    priority: str | None = None,
    limit: int = 20,
) -> list[Case]:
    """Cases by priority then newest first, optionally of one status (``open``: any but
    closed) and priority."""
    rows = await conn.fetch(
        f"""
        SELECT {CASE_COLUMNS} FROM fraud_cases
        WHERE ($1::text IS NULL OR status = $1 OR ($1 = 'open' AND status <> 'closed'))
          AND ($2::text IS NULL OR priority = $2)
        ORDER BY priority_rank, detection_time DESC
        LIMIT $3
        """,
        status,
        priority,
        limit,
    )
    return [Case.from_row(row) for row in rows]


async def count_by_status(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM fraud_cases GROUP BY status")
    return {row["status"]: row["n"] for row in rows}


async def count_by_transaction(conn: asyncpg.Connection) -> dict[str, int]:
    """Cases per transaction id (each should be 1)."""
    rows = await conn.fetch(
        "SELECT transaction_id, count(*) AS n FROM fraud_cases GROUP BY transaction_id"
    )
    return {row["transaction_id"]: row["n"] for row in rows}


async def all_alerts(conn: asyncpg.Connection) -> list[Case]:
    rows = await conn.fetch(f"SELECT {CASE_COLUMNS} FROM fraud_cases ORDER BY case_id")
    return [Case.from_row(row) for row in rows]


async def cases_of_user(conn: asyncpg.Connection, user_id: str, limit: int) -> list[Case]:
    """A user's cases (one per alert), newest first."""
    rows = await conn.fetch(
        f"SELECT {CASE_COLUMNS} FROM fraud_cases WHERE user_id = $1 "
        "ORDER BY detection_time DESC, case_id DESC LIMIT $2",
        user_id,
        limit,
    )
    return [Case.from_row(row) for row in rows]
