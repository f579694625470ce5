"""``ecap db``: the typer sub-app for the PostgreSQL schema."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from ecap import db, services
from ecap.db.migrate import MigrationError, migrate

app = typer.Typer(help="PostgreSQL schema.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@app.command("migrate")
def migrate_command() -> None:
    """Apply the SQL migrations not applied yet (safe to run again)."""
    try:
        dsn = db.dsn()
        applied = asyncio.run(migrate(dsn))
    except (services.ServiceUnavailable, db.DatabaseUnavailable, MigrationError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    for migration in applied:
        console.print(f"  applied {migration.version:04d}_{migration.name}")
    console.print(
        f"{len(applied)} migration(s) applied" if applied else "schema up to date; nothing to do"
    )
