"""The audit trail: one ``audit_log`` row per write, in the write's own transaction, so a
write and its record commit together or not at all."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson


async def record(
    conn: asyncpg.Connection,
    *,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Append who (``actor``) did what (``action`` on ``target``), and the state before and
    after (JSON; never a secret or a password hash)."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, target, before, after) "
        "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
        actor,
        action,
        target,
        _json(before),
        _json(after),
    )


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


async def entries(conn: asyncpg.Connection, target: str) -> list[dict[str, Any]]:
    """The audit rows of ``target``, oldest first."""
    rows = await conn.fetch(
        "SELECT at, actor, action, before, after FROM audit_log WHERE target = $1 "
        "ORDER BY audit_id",
        target,
    )
    return [
        {
            "at": row["at"],
            "actor": row["actor"],
            "action": row["action"],
            "before": orjson.loads(row["before"]) if row["before"] is not None else None,
            "after": orjson.loads(row["after"]) if row["after"] is not None else None,
        }
        for row in rows
    ]
