"""``ecap db migrate`` applies each migration once, in order, and refuses edited history."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecap.db.migrate import MIGRATIONS, MigrationError, migrate
from tests.integration.conftest import scratch_database

from .conftest import fetch

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database(postgres_dsn: str) -> Iterator[str]:
    with scratch_database(postgres_dsn, "migrate") as dsn:
        yield dsn


def _ecap_db_migrate(dsn: str, home: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ecap.cli", "db", "migrate"],
        env={**os.environ, "ECAP_POSTGRES_DSN": dsn, "ECAP_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_migrate_twice_applies_everything_once_then_nothing(
    empty_database: str, tmp_path: Path
) -> None:
    first = _ecap_db_migrate(empty_database, tmp_path)
    schema_first = asyncio.run(fetch(empty_database, "SELECT * FROM schema_migrations"))
    second = _ecap_db_migrate(empty_database, tmp_path)
    schema_second = asyncio.run(fetch(empty_database, "SELECT * FROM schema_migrations"))

    assert "applied 0001_fraud_cases" in first
    assert "nothing to do" in second
    assert [dict(r) for r in schema_second] == [dict(r) for r in schema_first]
    assert [r["version"] for r in schema_first] == [
        int(p.name[:4]) for p in sorted(MIGRATIONS.glob("*.sql"))
    ]


def test_a_migration_edited_after_it_was_applied_is_refused(
    empty_database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    original = next(iter(sorted(MIGRATIONS.glob("*.sql"))))
    (folder / original.name).write_text(original.read_text())
    asyncio.run(migrate(empty_database, folder))
    (folder / original.name).write_text(original.read_text() + "\n-- edited\n")

    with pytest.raises(MigrationError, match="changed after it was applied"):
        asyncio.run(migrate(empty_database, folder))
