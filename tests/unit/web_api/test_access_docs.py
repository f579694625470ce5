"""docs/api.md's role table is the matrix of ``web/api/access.py``, row for row."""

from __future__ import annotations

import re
from pathlib import Path

from ecap.credentials import Role
from web.api import access

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
ROW = re.compile(
    r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \| (\w+) \| (\w+) \| (\w+) \|$", re.M
)


def test_the_role_table_of_the_docs_is_the_matrix() -> None:
    documented = {}
    for method, path, *cells in ROW.findall(DOC.read_text()):
        documented[(method, path)] = (
            None
            if cells[0] == "open"
            else {r for r, c in zip(Role, cells, strict=True) if c == "yes"}
        )
    matrix = {key: (None if roles is None else set(roles)) for key, roles in access.MATRIX.items()}
    assert documented == matrix
