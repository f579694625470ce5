"""The composition root of a stream worker: the one place a Faust app is configured and
its agents, tables, views and patches are wired together.

``ecap worker NAME`` calls :func:`create_app`, then :func:`build`, then :func:`run`. The
agents (``agents/``) add consume loops and their tables, and never register a view or look
each other up; the views (``web/``) are registered here, once per app; the patches of
third-party internals (``ecap.patches``) are switched on here and nowhere else. The settings
are tuned for sub-second results on the embedded broker and on Kafka alike: short commit
interval, small producer linger, no spinner.
"""

from __future__ import annotations

import gc
from typing import Any

import faust

from agents import alerts_sink, sales_kpis, transactions, user_events
from ecap import auth, metrics, services
from ecap.deadletter import worker_id
from ecap.fraud.rule_records import SigningKey
from ecap.kpis import clickstream
from ecap.kpis import sales as kpis_sales
from ecap.patches import aiokafka_no_auto_create, aiokafka_tansu, faust_delivery
from ecap.settings import Settings, get_settings
from ecap.topics import TRANSACTIONS, USER_EVENTS
from ecap.workers import WorkerSpec
from tables import user_state
from tables.kpi_ledger_topic import KpiLedger
from tables.log_resets import LogResets
from web.fraud_views import fraud_views, with_rules
from web.kpi_views import clickstream_views, kpi_health, sales_views
from web.worker_views import Health, health_and_metrics, with_log_resets


def create_app(spec: WorkerSpec, settings: Settings | None = None, **overrides: Any) -> faust.App:
    """A Faust app for one worker process, on the configured or embedded broker.

    Every web route but ``/health``, Faust's own included, asks for the API token
    (``ecap.auth``): the middleware is given to the aiohttp application Faust creates.
    """
    settings = settings or get_settings()
    kafka = services.kafka(settings)
    if kafka.embedded:
        aiokafka_tansu.install()
    # A worker asking about a topic that is gone must not create it with the broker's
    # default partition count (a restarted broker, a deleted topic): see the patch.
    aiokafka_no_auto_create.install()
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
        "web_bind": spec.web_host,  # Faust binds every interface unless told
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
with ``ecap.patches.faust_delivery``, before the bulk state writes): 7,340 tx/s at the
default, 9,401 with these. Reference cycles are still collected, in
batches; a young-generation pass over 50,000 objects takes a few milliseconds."""


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """After a full collection, move what survived it out of the collector's sight
    (``gc.freeze``), so the next full collection walks only what is newer.

    A full collection walks every tracked object, and a worker holds a dozen containers
    per cached user (``tables.fraud_partition``): measured in the transactions worker at
    1,000 tx/s, each took ~210 ms (four in 30 s), a pause every record in flight waits
    through. Frozen, the first still took ~100 ms and the next ones under 3 ms. The price:
    a reference cycle that survived a full collection and dies later is never collected
    (user states hold no cycles; they are freed by reference counting). The
    ``ecap_gc_frozen_objects`` gauge shows how many objects are frozen."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
        metrics.GC_FROZEN_OBJECTS.set(gc.get_freeze_count())


def build(app: faust.App, spec: WorkerSpec, *, sales: bool = True) -> None:
    """Wire the worker ``spec.name`` into ``app``: its tables, its agents over them, then
    its views.

    ``sales=False`` leaves the sales KPIs out of the transactions worker (the fraud agent
    alone, as ``bench/stream_fraud.py`` measures it).
    """
    worker = worker_id(spec.name, spec.instance)
    resets = LogResets()
    if spec.name == "transactions":
        # Hand records to the agents without four asyncio tasks each (see the patch).
        faust_delivery.install()
        fraud = transactions.build(app, worker, user_state.define(app, resets), rules_signing_key())
        fraud_views(app, spec, fraud)
        if sales:
            sales_ledger = KpiLedger.for_family(app, "sales", TRANSACTIONS, kpis_sales, resets)
            fraud.follow(sales_kpis.build(app, worker, sales_ledger).follow)
            sales_views(app, sales_ledger)
            health = kpi_health(sales_ledger)
        else:
            health = Health(fraud.control.caught_up.is_set, lambda: {})
        health = with_rules(health, fraud)
    elif spec.name == "user-events":
        clicks_ledger = KpiLedger.for_family(app, "clickstream", USER_EVENTS, clickstream, resets)
        user_events.build(app, worker, clicks_ledger)
        clickstream_views(app, clicks_ledger)
        health = kpi_health(clicks_ledger)
    elif spec.name == "alerts":
        sink = alerts_sink.build(app, worker)
        health = Health(
            lambda: sink.pool is not None, lambda: {"cases_created": sink.cases_created}
        )
    else:
        raise ValueError(f"no worker named {spec.name!r}")
    health_and_metrics(app, spec, with_log_resets(health, resets))


def rules_signing_key() -> SigningKey:
    """The key rule sets must be signed with, or why there is none: a worker without one
    keeps running, on the shipped rules, and refuses every pushed set (loudly)."""
    try:
        return SigningKey(auth.rules_signing_key())
    except auth.TokenError as exc:
        return SigningKey(None, str(exc))


def run(app: faust.App, log_level: str = "info") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT.

    Faust's spinner switches the root logger to DEBUG (about 18% of throughput), so it
    is turned off whatever the level. The garbage collector runs less often
    (:data:`GC_THRESHOLDS`), and what survives a full collection is frozen
    (:func:`_freeze_survivors`).
    """
    gc.set_threshold(*GC_THRESHOLDS)
    gc.callbacks.append(_freeze_survivors)
    worker = faust.Worker(app, loglevel=log_level, quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()
