"""Start, stop and list background worker processes under ``ECAP_HOME`` (``make demo``).

Each worker instance runs ``ecap worker NAME --instance N`` (the REST API: ``ecap api``)
in its own session, logs to
``<home>/logs/worker-NAME-N.log`` and is recorded in ``<home>/workers/NAME-N.json`` (pid,
start time, web URL), so ``stop`` ends exactly the processes ``start`` started. ``start``
makes the API token file first (``ecap.auth``), so the workers share it from the start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ecap import auth
from ecap.embedded import process
from ecap.settings import Settings, get_settings
from ecap.workers import API, API_PREFIX, WORKERS, worker_spec

VIEWS: dict[str, tuple[str, ...]] = {
    "transactions": ("/kpis/current", "/kpis/timeseries?metric=revenue&window=tumbling_1m"),
    "user-events": ("/funnel", "/sessions/active", "/top"),
}
"""The live views worth opening first, per worker (all of them: docs/api-live.md)."""


@dataclass(frozen=True)
class WorkerProcess:
    name: str
    instance: int
    pid: int
    create_time: float
    url: str
    log: Path

    @property
    def running(self) -> bool:
        return process.alive(self.pid, self.create_time)

    def views(self) -> list[str]:
        if self.name == API:
            return [f"{self.url}{API_PREFIX}/health", f"{self.url}{API_PREFIX}/docs"]
        return [self.url + path for path in (*VIEWS.get(self.name, ()), "/health", "/metrics")]


def _record_path(settings: Settings, name: str, instance: int) -> Path:
    return settings.home / "workers" / f"{name}-{instance}.json"


def _read(path: Path) -> WorkerProcess | None:
    try:
        raw = json.loads(path.read_text())
        return WorkerProcess(
            raw["name"],
            raw["instance"],
            raw["pid"],
            raw["create_time"],
            raw["url"],
            Path(raw["log"]),
        )
    except (OSError, ValueError, KeyError):
        return None


def start(
    name: str,
    instance: int = 0,
    web_port: int | None = None,
    settings: Settings | None = None,
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """Start one worker instance in the background (a running one is left as it is)."""
    settings = settings or get_settings()
    if name not in (*WORKERS, API):
        raise ValueError(f"unknown worker {name!r}; choose one of {', '.join((*WORKERS, API))}")
    path = _record_path(settings, name, instance)
    known = _read(path) if path.exists() else None
    if known is not None and known.running:
        return known
    auth.api_token(settings)  # create the token file now rather than race the workers to it
    log = settings.home / "logs" / f"worker-{name}-{instance}.log"
    if name == API:
        auth.api_jwt_secret(settings)  # fail here, with advice, rather than in the log
        port = web_port if web_port is not None else settings.api_port + instance
        url = f"http://{settings.api_host}:{port}"
        argv = [sys.executable, "-m", "ecap.cli", "api", "--port", str(port)]
    else:
        spec = worker_spec(name, instance, web_port, settings)
        url = spec.url
        argv = [sys.executable, "-m", "ecap.cli", "worker", name, "--instance", str(instance)]
        argv += ["--web-port", str(spec.web_port)]
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "ECAP_HOME": str(settings.home.resolve()), **(env or {})}
    with log.open("ab") as output:
        proc = subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=environment,
        )
    started = WorkerProcess(name, instance, proc.pid, process.create_time(proc.pid), url, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "name": name,
                "instance": instance,
                "pid": started.pid,
                "create_time": started.create_time,
                "url": started.url,
                "log": str(log),
            }
        )
    )
    return started


def status(settings: Settings | None = None) -> list[WorkerProcess]:
    """Every worker instance recorded under ``ECAP_HOME``, running or not."""
    settings = settings or get_settings()
    folder = settings.home / "workers"
    found = [_read(path) for path in sorted(folder.glob("*.json"))] if folder.exists() else []
    return [w for w in found if w is not None]


def stop(settings: Settings | None = None, timeout: float = 20.0) -> list[WorkerProcess]:
    """SIGTERM every recorded worker (SIGKILL after ``timeout``); returns those stopped."""
    settings = settings or get_settings()
    running = [worker for worker in status(settings) if worker.running]
    for worker in running:  # all at once, so they shut down side by side
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in running:
        process.terminate(worker.pid, worker.create_time, timeout)
    for worker in status(settings):
        _record_path(settings, worker.name, worker.instance).unlink(missing_ok=True)
    return running
