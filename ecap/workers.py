"""The stream workers ECAP runs, and where one instance keeps its state and serves its views.

One worker process consumes one input topic; start more instances of the same worker to
share its partitions. What each worker is made of is wired in ``ecap.faust_app``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ecap.settings import Settings, get_settings

WORKERS: dict[str, int] = {"transactions": 0, "user-events": 10, "alerts": 20}
"""Worker name -> web port offset from ``ECAP_WEB_BASE_PORT`` (plus the instance number)."""

API = "api"
"""The REST API process (``ecap api``), started in the background like a worker."""
API_PREFIX = "/api/v1"
"""Where the REST API's routes live (``web.api``)."""


@dataclass(frozen=True)
class WorkerSpec:
    """Where one worker process keeps its state and serves its views."""

    name: str
    instance: int
    web_host: str
    web_port: int
    datadir: Path

    @property
    def url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"


def worker_spec(
    name: str, instance: int, web_port: int | None, settings: Settings | None = None
) -> WorkerSpec:
    settings = settings or get_settings()
    if name not in WORKERS:
        raise ValueError(f"unknown worker {name!r}; choose one of {', '.join(WORKERS)}")
    port = web_port if web_port is not None else settings.web_base_port + WORKERS[name] + instance
    datadir = settings.home / "workers" / f"{name}-{instance}"
    return WorkerSpec(name, instance, settings.web_host, port, datadir)
