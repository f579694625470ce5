"""Keyset pagination: an opaque ``next`` cursor holding the position of the last item sent.

The cursor is the position (for the case queue: priority rank, creation time, case id;
for a gold list: the sort value and the customer id) as URL-safe base64 of JSON. The next
page starts strictly after it, so pages neither skip nor repeat an item when items are
added or change between requests, and a deep page costs what the first does. A cursor
that does not decode is a 422 naming the ``cursor`` parameter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from web.api.problems import Problem

MAX_LIMIT = 1000
MAX_OFFSET = 100_000
"""The deepest ``offset`` a grid may ask for; deeper pages are for the cursor."""

Position = tuple[int, datetime, int]


def pack(values: Sequence[Any]) -> str:
    """A cursor holding ``values`` (JSON scalars)."""
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def bad_cursor() -> Problem:
    return Problem(
        422,
        "the cursor is not one this API made",
        "pass the 'next' value of the previous page unchanged, or leave 'cursor' out for "
        "the first page",
        errors=[{"field": "query.cursor", "problem": "not a cursor"}],
    )


def unpack(cursor: str) -> list[Any]:
    """The values of a cursor :func:`pack` made; 422 naming ``cursor`` otherwise."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise bad_cursor() from exc
    if not isinstance(values, list):
        raise bad_cursor()
    return values


def encode(position: Position) -> str:
    rank, created_at, case_id = position
    return pack([rank, created_at.isoformat(), case_id])


def decode(cursor: str) -> Position:
    try:
        rank, created_at, case_id = unpack(cursor)
        position = (int(rank), datetime.fromisoformat(created_at), int(case_id))
        if position[1].tzinfo is None:
            raise ValueError("a cursor's time has a time zone")
    except (ValueError, TypeError) as exc:
        raise bad_cursor() from exc
    return position
