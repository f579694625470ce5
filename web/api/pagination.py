"""Keyset pagination: an opaque ``next`` cursor holding the position of the last item sent.

The cursor is the queue position (priority rank, creation time, case id) as URL-safe
base64 of JSON. The next page starts strictly after it, so pages neither skip nor repeat a
case when cases are added or change between requests, and a deep page costs what the first
does. A cursor that does not decode is a 422 naming the ``cursor`` parameter.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson

from web.api.problems import Problem

MAX_LIMIT = 1000

Position = tuple[int, datetime, int]


def encode(position: Position) -> str:
    rank, created_at, case_id = position
    raw = orjson.dumps([rank, created_at.isoformat(), case_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        rank, created_at, case_id = orjson.loads(raw)
        position = (int(rank), datetime.fromisoformat(created_at), int(case_id))
        if position[1].tzinfo is None:
            raise ValueError("a cursor's time has a time zone")
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise Problem(
            422,
            "the cursor is not one this API made",
            "pass the 'next' value of the previous page unchanged, or leave 'cursor' out for "
            "the first page",
            errors=[{"field": "query.cursor", "problem": "not a cursor"}],
        ) from exc
    return position
