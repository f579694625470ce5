"""Versioned SQL migrations, applied in order, each once: ``ecap db migrate``.

A migration is a file ``ecap/db/migrations/NNNN_name.sql``. ``schema_migrations``
records each applied version with the SHA-256 of its file, so running ``migrate`` again
applies nothing, and a file edited after it was applied is refused (add a new migration
instead). All pending migrations run in one transaction under an advisory lock: two
processes migrating at once apply each file once, and a failing file leaves nothing half
done.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ecap.db import connect

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_ID = 0x45434150_0001
"""pg_advisory_xact_lock key of the migrator ("ECAP" + 1)."""

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The migrations folder or the database's migration history is inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(folder: Path = MIGRATIONS) -> list[Migration]:
    """Every migration file in ``folder``, by version; badly named files are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name} is not a migration name; use NNNN_lowercase_name.sql, "
                "e.g. 0002_add_case_owner.sql"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations have version {version:04d}; renumber one")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def applied(conn: asyncpg.Connection) -> dict[int, str]:
    """Version -> checksum of the migrations already applied (empty on a new database)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {row["version"]: row["checksum"] for row in rows}


async def pending(conn: asyncpg.Connection, folder: Path = MIGRATIONS) -> list[Migration]:
    """The migrations of ``folder`` this database has not applied yet."""
    done = await applied(conn)
    return [m for m in discover(folder) if m.version not in done]


def pending_advice(missing: list[Migration]) -> str:
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
    return f"the database lacks the migrations {names}; run 'ecap db migrate' against it"


async def migrate(dsn: str, folder: Path = MIGRATIONS) -> list[Migration]:
    """Apply the pending migrations of ``folder``; return those applied now."""
    migrations = discover(folder)
    conn = await connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
            await conn.execute(_BOOKKEEPING)
            done = await applied(conn)
            changed = [m for m in migrations if m.version in done and done[m.version] != m.checksum]
            if changed:
                names = ", ".join(f"{m.version:04d}_{m.name}.sql" for m in changed)
                raise MigrationError(
                    f"{names} changed after it was applied; restore the file and put the "
                    "change in a new migration"
                )
            pending = [m for m in migrations if m.version not in done]
            for migration in pending:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            return pending
    finally:
        await conn.close()
