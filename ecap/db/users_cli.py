"""``ecap users`` and ``ecap keys``: the REST API's principals (docs/api.md).

Each write is audited with the operating-system user who ran the command
(``cli:<user>``). A password is read from a hidden prompt (or from standard input with
``--password-stdin``), never from an argument, which would stay in the shell's history.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from ecap import auth, db, services
from ecap.credentials import Role, WeakPassword, hash_password, new_api_key
from ecap.db import users
from ecap.db.migrate import pending, pending_advice
from ecap.settings import get_settings
from ecap.workers import API_PREFIX

users_app = typer.Typer(help="Users of the REST API.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of the REST API (X-API-Key).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _run(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a connection to a fully migrated database; errors end the command."""

    async def main() -> T:
        conn = await db.connect(db.dsn())
        try:
            missing = await pending(conn)
            if missing:
                raise db.DatabaseUnavailable(pending_advice(missing))
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except (services.ServiceUnavailable, db.DatabaseUnavailable, users.UserError) as exc:
        _fail(str(exc))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        _fail("the two passwords differ; run the command again")
    return first


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Lower-case name, e.g. alice."),
    role: Role = typer.Option(..., help="analyst, investigator or admin."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
) -> None:
    """Add a user who logs in with a password."""
    try:
        password_hash = hash_password(_password(password_stdin))
    except WeakPassword as exc:
        _fail(str(exc))
    user = _run(lambda conn: users.add_user(conn, username, role, password_hash, actor=_actor()))
    console.print(f"user {user.username} added with role {user.role.value}")


@users_app.command("demo")
def users_demo() -> None:
    """Add one demo user per role (demo-analyst, demo-investigator, demo-admin), each with
    a random password in a 0600 file under ECAP_HOME. Embedded default only."""
    settings = get_settings()
    if not settings.embedded_database:
        _fail(
            "demo users are for the embedded default only (ECAP_POSTGRES_DSN is set); "
            "add real users with 'ecap users add NAME --role ROLE'"
        )
    table = Table("user", "role", "password file", header_style="bold")
    for role in Role:
        username = f"demo-{role.value}"
        password, made = auth.demo_password(username, settings)
        if not _run(_add_if_missing(username, role, password)) and made:
            _fail(
                f"{username} exists, but its password file was gone; 'ecap users disable "
                f"{username}', or 'ecap down' and delete ECAP_HOME for a fresh demo"
            )
        table.add_row(username, role.value, str(auth.demo_password_path(username, settings)))
    console.print(table)
    url = f"http://{settings.api_host}:{settings.api_port}{API_PREFIX}"
    path = auth.demo_password_path("demo-investigator", settings)
    console.print(
        "log in, e.g.: curl -s -d username=demo-investigator "
        f'-d "password=$(cat {path})" {url}/auth/token',
        highlight=False,
        soft_wrap=True,
    )


def _add_if_missing(
    username: str, role: Role, password: str
) -> Callable[[asyncpg.Connection], Awaitable[bool]]:
    async def work(conn: asyncpg.Connection) -> bool:
        if any(user.username == username for user in await users.list_users(conn)):
            return False
        await users.add_user(conn, username, role, hash_password(password), actor=_actor())
        return True

    return work


@users_app.command("list")
def users_list() -> None:
    """Show every user, its role and whether it is disabled."""
    found = _run(users.list_users)
    table = Table("user", "role", "created", "disabled", header_style="bold")
    for user in found:
        disabled = f"[red]{user.disabled_at:%Y-%m-%d %H:%M}[/]" if user.disabled_at else ""
        table.add_row(user.username, user.role.value, f"{user.created_at:%Y-%m-%d %H:%M}", disabled)
    console.print(table)
    console.print(f"{len(found)} users, {sum(u.disabled_at is None for u in found)} enabled")


@users_app.command("disable")
def users_disable(username: str = typer.Argument(..., help="The user to disable.")) -> None:
    """Disable a user: its tokens and API keys stop working at once."""
    user = _run(lambda conn: users.disable_user(conn, username, actor=_actor()))
    console.print(f"user {user.username} disabled; its tokens and keys no longer work")


@keys_app.command("create")
def keys_create(
    username: str = typer.Argument(..., help="The user the key acts as (with its role)."),
    name: str = typer.Option(..., "--name", help="What the key is for, e.g. 'dashboard'."),
) -> None:
    """Make an API key; it is shown once, here, and stored only as a hash."""
    key = new_api_key()
    made = _run(lambda conn: users.create_key(conn, username, name, key, actor=_actor()))
    console.print(f"API key {made.prefix} for {made.username} ({made.name}); send it as X-API-Key:")
    print(key.key)  # alone on its line, for scripts; never logged


@keys_app.command("list")
def keys_list() -> None:
    """Show every API key (its prefix, never the key)."""
    found = _run(users.list_keys)
    table = Table("key", "user", "name", "created", "revoked", header_style="bold")
    for key in found:
        revoked = f"[red]{key.revoked_at:%Y-%m-%d %H:%M}[/]" if key.revoked_at else ""
        table.add_row(
            key.prefix, key.username, key.name, f"{key.created_at:%Y-%m-%d %H:%M}", revoked
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    prefix: str = typer.Argument(..., help="The key's prefix ('ecap keys list')."),
) -> None:
    """Revoke an API key: it stops working at once."""
    key = _run(lambda conn: users.revoke_key(conn, prefix, actor=_actor()))
    console.print(f"API key {key.prefix} of {key.username} revoked")
