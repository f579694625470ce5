"""Start, stop and inspect the embedded stack, and keep the stack file in step.

The stack file (``<ECAP_HOME>/stack.json``) maps each running embedded server to its
address, pid and log. It is what :mod:`ecap.services` reads in every other process.
A server whose external address is configured is never started.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ecap import services
from ecap.embedded import broker, postgres, process, redis
from ecap.settings import Settings

SERVICES = ("kafka", "postgres", "redis")


@dataclass(frozen=True)
class ServiceState:
    """One line of ``ecap status``."""

    name: str
    mode: str  # "embedded", "external" or "stopped"
    address: str | None
    running: bool
    detail: str


@contextmanager
def _locked(settings: Settings) -> Iterator[dict[str, Any]]:
    """Hold the stack lock and yield the stack, written back on exit."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with (settings.home / ".stack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stack = services.read_stack(settings)
        try:
            yield stack
        finally:
            path = services.stack_path(settings)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(stack, indent=2, sort_keys=True))
            tmp.replace(path)


def _external(settings: Settings, name: str) -> str | None:
    return {
        "kafka": settings.kafka_bootstrap,
        "postgres": settings.postgres_dsn,
        "redis": settings.redis_url,
    }[name]


def _starter(settings: Settings, name: str) -> Callable[[], dict[str, Any]]:
    home = settings.home
    return {
        "kafka": lambda: broker.start(
            settings.embedded_kafka_host, settings.embedded_kafka_port, home
        ),
        "postgres": lambda: postgres.start(home),
        "redis": lambda: redis.start(home),
    }[name]


def _healthy(name: str, entry: dict[str, Any]) -> bool:
    checks: dict[str, Callable[[dict[str, Any]], bool]] = {
        "kafka": broker.healthy,
        "postgres": postgres.healthy,
        "redis": redis.healthy,
    }
    return process.alive(int(entry["pid"]), entry.get("create_time")) and checks[name](entry)


def _stopper(name: str) -> Callable[[dict[str, Any]], None]:
    stoppers: dict[str, Callable[[dict[str, Any]], None]] = {
        "kafka": broker.stop,
        "postgres": postgres.stop,
        "redis": redis.stop,
    }
    return stoppers[name]


def up(settings: Settings, report: Callable[[str, str], None]) -> dict[str, Any]:
    """Start every embedded server that is not configured externally and not running.

    ``report(name, what_happened)`` is called once per service. Raises
    :class:`~ecap.embedded.process.StartError` on the first server that fails; servers
    already started stay up and are recorded, so ``ecap down`` still stops them.
    """
    with _locked(settings) as stack:
        for name in SERVICES:
            external = _external(settings, name)
            if external:
                stack.pop(name, None)
                report(name, f"external at {external}, not started")
                continue
            entry = stack.get(name)
            if entry is not None and _healthy(name, entry):
                report(name, f"already running at {entry['address']} (pid {entry['pid']})")
                continue
            if entry is not None:
                _stopper(name)(entry)
                stack.pop(name)
            stack[name] = _starter(settings, name)()
            report(name, f"started at {stack[name]['address']} (pid {stack[name]['pid']})")
        return dict(stack)


def down(settings: Settings, report: Callable[[str, str], None]) -> None:
    """Stop every embedded server recorded in the stack file, in reverse start order."""
    with _locked(settings) as stack:
        for name in reversed(SERVICES):
            entry = stack.pop(name, None)
            if entry is None:
                report(name, "not running")
                continue
            _stopper(name)(entry)
            report(name, "stopped")


def status(settings: Settings) -> list[ServiceState]:
    """What runs and where, checked live (a recorded server that died shows as down)."""
    stack = services.read_stack(settings)
    states = []
    for name in SERVICES:
        external = _external(settings, name)
        entry = stack.get(name)
        if external:
            states.append(ServiceState(name, "external", external, _reachable(name, external), ""))
        elif entry is None:
            states.append(ServiceState(name, "stopped", None, False, "run 'ecap up'"))
        else:
            running = _healthy(name, entry)
            detail = f"pid {entry['pid']}, {entry['kind']}, log {entry['log']}"
            if not running:
                detail = f"recorded but not answering; see {entry['log']}, then 'ecap up'"
            states.append(ServiceState(name, "embedded", entry["address"], running, detail))
    return states


def _reachable(name: str, address: str) -> bool:
    entry = {"address": address}
    if name == "kafka":
        return broker.answers(address.split(",")[0])
    check = postgres.healthy if name == "postgres" else redis.healthy
    return check(entry)
