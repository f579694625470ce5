"""Embedded PostgreSQL 16 from the ``pgserver`` wheel, listening on a Unix socket only.

When run as root, pgserver runs the server as a system user it creates (``pgserver``).
The data folder lives under ``ECAP_HOME`` and survives ``ecap down``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from ecap.embedded import process
from ecap.embedded.process import StartError

DATABASE = "ecap"


def _data_dir(home: Path) -> Path:
    return (home / "postgres").resolve()


def start(home: Path) -> dict[str, Any]:
    """Start (or adopt) the server for ``home``; return its stack entry."""
    pgserver = _pgserver()
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata = _data_dir(home)
    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError) as exc:
        log = pgdata / "log"
        raise StartError(
            f"the embedded PostgreSQL in {pgdata} failed to start ({exc}); "
            f"see {log}:\n{process.log_tail(log)}\n"
            "if the folder is damaged, move it away and run 'ecap up' again, "
            "or set ECAP_POSTGRES_DSN to use an external server"
        ) from exc
    if "ecap" not in server.psql("SELECT datname FROM pg_database;"):
        server.psql(f"CREATE DATABASE {DATABASE};")
    pid = server.get_pid()
    assert pid is not None
    return {
        "address": server.get_uri(DATABASE),
        "pid": pid,
        "create_time": process.create_time(pid),
        "log": str(pgdata / "log"),
        "data": str(pgdata),
        "kind": "pgserver (PostgreSQL 16)",
    }


async def _ping(dsn: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


def healthy(entry: dict[str, Any]) -> bool:
    return asyncio.run(_ping(str(entry["address"])))


def stop(entry: dict[str, Any]) -> None:
    _pgserver()
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    user = "pgserver" if _running_as_root() else None
    with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=Path(entry["data"]), user=user, timeout=30)
    process.terminate(int(entry["pid"]), entry.get("create_time"))


def _pgserver() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver
    return pgserver


def _running_as_root() -> bool:
    import os

    return os.geteuid() == 0
