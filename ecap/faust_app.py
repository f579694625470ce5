"""The one place a Faust app is configured.

``ecap worker NAME`` builds an app here and lets ``agents.<name>.build(app)`` add its
agents, tables and views. The settings are tuned for sub-second results on the embedded
broker and on Kafka alike: short commit interval, small producer linger, no spinner.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from ecap import auth, services
from ecap.kafka import tansu_compat
from ecap.settings import Settings, get_settings


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


WORKERS: dict[str, tuple[tuple[str, ...], int]] = {
    "transactions": (("agents.transactions", "agents.sales_kpis"), 0),
    "user-events": (("agents.user_events",), 10),
    "alerts": (("agents.alerts_sink",), 20),
}
"""Worker name -> (modules whose ``build(app, spec)`` add agents, tables and views; web
port offset from the base port). One worker process consumes one input topic."""


def worker_spec(
    name: str, instance: int, web_port: int | None, settings: Settings | None = None
) -> WorkerSpec:
    settings = settings or get_settings()
    if name not in WORKERS:
        raise ValueError(f"unknown worker {name!r}; choose one of {', '.join(WORKERS)}")
    offset = WORKERS[name][1]
    port = web_port if web_port is not None else settings.web_base_port + offset + instance
    datadir = settings.home / "workers" / f"{name}-{instance}"
    return WorkerSpec(name, instance, settings.web_host, port, datadir)


def create_app(spec: WorkerSpec, settings: Settings | None = None, **overrides: Any) -> faust.App:
    """A Faust app for one worker process, on the configured or embedded broker.

    Every web route but ``/health``, Faust's own included, asks for the API token
    (``ecap.auth``): the middleware is given to the aiohttp application Faust creates.
    """
    settings = settings or get_settings()
    kafka = services.kafka(settings)
    if kafka.embedded:
        tansu_compat.install()
    spec.datadir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "broker": [f"kafka://{host}" for host in kafka.address.split(",")],
        "store": "rocksdb://",
        "datadir": str(spec.datadir),
        "topic_replication_factor": settings.topic_replication,
        "topic_allow_declare": True,
        "table_standby_replicas": 0,
        "web_enabled": True,
        "web_host": spec.web_host,
        "web_port": spec.web_port,
        "canonical_url": spec.url,
        "web_in_thread": False,
        "broker_commit_interval": 0.2,
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 1.0,
        "broker_rebalance_timeout": 20.0,
        "producer_linger": 0.002,
        "producer_acks": 1,
        "stream_buffer_maxsize": 8192,
        "consumer_auto_offset_reset": "earliest",
        "logging_config": None,
    }
    options.update(overrides)
    web_options = dict(options.get("web_application_options") or {})
    guard = auth.middleware(auth.api_token(settings), auth.token_source(settings))
    web_options["middlewares"] = [guard, *web_options.get("middlewares", ())]
    options["web_application_options"] = web_options
    return faust.App(f"ecap-{spec.name}", **options)


GC_THRESHOLDS = (50_000, 50, 100)
"""Cyclic garbage collector thresholds of a worker process (Python's default: 700, 10, 10).

A worker keeps tens of thousands of per-user states in memory, each a dozen lists and
dicts, and allocates a few short-lived objects per record, so at the default threshold
the collector runs every few records and keeps walking the states, which hold no cycles.
Measured on the fraud agent alone (bench/stream_fraud.py's backlog, 60,000 transactions,
with ``ecap.kafka.faust_fastpath``, before the bulk state writes): 7,340 tx/s at the
default, 9,401 with these. Reference cycles are still collected, in
batches; a young-generation pass over 50,000 objects takes a few milliseconds."""


def run(app: faust.App, log_level: str = "info") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT.

    Faust's spinner switches the root logger to DEBUG (about 18% of throughput), so it
    is turned off whatever the level. The garbage collector runs less often
    (:data:`GC_THRESHOLDS`).
    """
    gc.set_threshold(*GC_THRESHOLDS)
    worker = faust.Worker(app, loglevel=log_level, quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()
