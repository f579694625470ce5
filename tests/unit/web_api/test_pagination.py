"""The keyset cursor: opaque, round-trips, and a forged one is a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from web.api import pagination
from web.api.problems import Problem


def test_a_cursor_round_trips_its_position() -> None:
    position = (1, datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC), 42)
    assert pagination.decode(pagination.encode(position)) == position


@pytest.mark.parametrize("cursor", ["zz", "bm90IGpzb24", "WzEsMiwzXQ", "WzEsIjIwMjYtMDUtMDEiLDNd"])
def test_a_cursor_this_api_did_not_make_is_422(cursor: str) -> None:
    with pytest.raises(Problem) as raised:
        pagination.decode(cursor)
    assert (raised.value.status, raised.value.extra["errors"][0]["field"]) == (422, "query.cursor")
