"""``GET /audit``: the audit trail of one target (``case:42``, ``user:alice``,
``key:1a2b3c4d``), oldest first, for admins; personal data in it is masked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ecap.db import audit
from web.api.masking import mask_values
from web.api.security import DOCUMENTED_CREDENTIALS
from web.api.state import connection

router = APIRouter(tags=["audit"], dependencies=DOCUMENTED_CREDENTIALS)


class AuditEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.get("/audit", summary="Who changed a target, when, from what to what")
async def audit_trail(
    target: Annotated[str, Query(min_length=3, max_length=200, pattern=r"^[a-z]+:.+$")],
    conn: Annotated[asyncpg.Connection, Depends(connection)],
) -> list[AuditEntry]:
    return [AuditEntry(**mask_values(entry)) for entry in await audit.entries(conn, target)]
