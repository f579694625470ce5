"""Pages of a list of customers read from the gold snapshot: a keyset cursor for API
clients, or a bounded ``offset`` for the dashboard's grids.

A list is a SQL query yielding ``customer_id`` and a numeric sort key ``_key`` (a missing
figure sorts as -infinity, so it is last when descending). The cursor holds the key and
the customer id of the last row sent; the next page starts strictly after it in the order
``(_key, customer_id)``, so it neither skips nor repeats a customer. JSON has no infinity:
the cursor carries it as null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from web.api import pagination
from web.api.gold import View
from web.api.problems import Problem

Limit = Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT, description="Rows per page.")]
Offset = Annotated[
    int | None,
    Query(
        ge=0,
        le=pagination.MAX_OFFSET,
        description="Grid paging: skip this many rows (instead of 'cursor').",
    ),
]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="The 'next' value of the previous page (keyset paging)."),
]
Order = Literal["asc", "desc"]


class PageInfo(BaseModel):
    total: int = Field(description="Rows matching the filters, over all pages.")
    next: str | None = Field(description="Cursor of the next page; null on the last page.")
    versions: dict[str, int] = Field(description="The gold table versions read.")


def page(
    view: View,
    sql: str,
    params: Sequence[Any],
    *,
    order: Order,
    limit: int,
    cursor: str | None,
    offset: int | None,
) -> tuple[list[dict[str, Any]], int, str | None]:
    """One page of ``sql``'s rows, how many rows match, and the cursor of the next page
    (only in keyset paging)."""
    if cursor is not None and offset is not None:
        raise Problem(
            422,
            "'cursor' and 'offset' are two ways to page; a request uses one",
            "API clients follow 'next' with 'cursor'; grids use 'offset'",
            errors=[{"field": "query.offset", "problem": "given with 'cursor'"}],
        )
    counted = view.one(f"SELECT count(*) AS n FROM ({sql})", params)
    total = int(counted["n"]) if counted else 0
    direction = "DESC" if order == "desc" else "ASC"
    after, bound = "", list(params)
    if cursor is not None:
        key, customer_id = _position(cursor)
        sign = "<" if order == "desc" else ">"
        after = f"WHERE _key {sign} ? OR (_key = ? AND customer_id {sign} ?)"
        bound += [key, key, customer_id]
    rows = view.rows(
        f"SELECT * FROM ({sql}) {after} ORDER BY _key {direction}, customer_id {direction} "
        f"LIMIT ? OFFSET ?",
        [*bound, limit + 1, offset or 0],
    )
    more = len(rows) > limit
    rows = rows[:limit]
    following = None
    if more and offset is None:
        last = rows[-1]
        following = pagination.pack([_json_key(last["_key"]), last["customer_id"]])
    for row in rows:
        del row["_key"]
    return rows, total, following


def _json_key(key: float) -> float | None:
    return None if math.isinf(key) else key


def _position(cursor: str) -> tuple[float, str]:
    values = pagination.unpack(cursor)
    try:
        key, customer_id = values
        if not isinstance(customer_id, str):
            raise TypeError("a customer id is text")
        return (-math.inf if key is None else float(key)), customer_id
    except (TypeError, ValueError) as exc:
        raise pagination.bad_cursor() from exc
