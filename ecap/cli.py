"""The ``ecap`` command line: the embedded stack, topics, schemas and the data generator."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from ecap import auth, db, services, workers
from ecap.db.cases import SchemaMissing
from ecap.db.cli import app as db_app
from ecap.db.users_cli import keys_app, users_app
from ecap.embedded import stack
from ecap.embedded.process import StartError
from ecap.events import SCHEMA_VERSION, json_schemas
from ecap.fraudops.cli import cases_app, evaluate_app, rules_app
from ecap.generator.cli import app as generate_app
from ecap.kafka import admin, offsets
from ecap.settings import get_settings
from ecap.topics import CATALOG
from spark_jobs.cli import app as spark_app
from spark_jobs.cli import schedule as spark_schedule

app = typer.Typer(
    help="ECAP: e-commerce analytics platform.", no_args_is_help=True, add_completion=False
)
topics_app = typer.Typer(help="Create and inspect the topic catalog.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event contracts.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(generate_app, name="generate", help="Generate realistic shop data.")
app.add_typer(db_app, name="db")
app.add_typer(rules_app, name="rules")
app.add_typer(cases_app, name="cases")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(spark_app, name="spark", help="Batch jobs: topics into Delta Lake, RFM, CLV, churn.")
app.command("schedule")(spark_schedule)

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

STARTUP_ERRORS: tuple[type[Exception], ...] = (
    services.ServiceUnavailable,
    db.DatabaseUnavailable,
    SchemaMissing,
    admin.BrokerUnreachable,
    auth.TokenError,
    StartError,
)
"""A server or secret a command needs is not there. The message says what to do, so it is
printed alone; the traceback only at debug level (``ECAP_LOG_LEVEL=DEBUG``)."""


def _debug() -> bool:
    return get_settings().log_level.upper() == "DEBUG"


def _fail(
    message: str, cause: BaseException | None = None, debug: bool | None = None
) -> typer.Exit:
    """Print ``error: message`` (and, at debug level, the traceback of ``cause``)."""
    if cause is not None and (_debug() if debug is None else debug):
        traceback.print_exception(cause, file=sys.stderr)
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=1)


@app.command()
def up() -> None:
    """Start the embedded broker, PostgreSQL and Redis in the background (idempotent)."""
    settings = get_settings()
    try:
        stack.up(settings, lambda name, what: console.print(f"  {name:<9} {what}"))
    except StartError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"[green]ready[/]; data and logs under {settings.home.resolve()}")


@app.command()
def down() -> None:
    """Stop the embedded servers started by 'ecap up'. Data under ECAP_HOME is kept."""
    stack.down(get_settings(), lambda name, what: console.print(f"  {name:<9} {what}"))


@app.command()
def status() -> None:
    """Show what runs and where. Exits 1 when a configured service is not answering."""
    states = stack.status(get_settings())
    table = Table("service", "mode", "address", "state", "detail")
    for s in states:
        state = "[green]up[/]" if s.running else "[red]down[/]"
        table.add_row(s.name, s.mode, s.address or "-", state, s.detail)
    console.print(table)
    if not all(s.running for s in states):
        raise typer.Exit(code=1)


@app.command()
def worker(
    name: str = typer.Argument(..., help=f"One of: {', '.join(workers.WORKERS)}."),
    instance: int = typer.Option(0, min=0, help="Instance number; sets state folder and port."),
    web_port: int | None = typer.Option(None, help="Web port (default: base + offset + N)."),
    log_level: str | None = typer.Option(
        None, help="debug, info, warning or error (default: ECAP_LOG_LEVEL)."
    ),
) -> None:
    """Run a stream worker in the foreground. Start more instances to share partitions."""
    if name not in workers.WORKERS:
        raise _fail(f"unknown worker {name!r}; choose one of {', '.join(workers.WORKERS)}")
    from ecap import faust_app  # imports every agent: only the worker command needs it

    level = (log_level or get_settings().log_level).lower()
    spec = workers.worker_spec(name, instance, web_port)
    try:
        services.reachable_kafka()
        stream_app = faust_app.create_app(spec)
        faust_app.build(stream_app, spec)
    except STARTUP_ERRORS as exc:
        raise _fail(str(exc), exc, debug=level == "debug") from exc
    console.print(
        f"worker {name}-{instance}: state in {spec.datadir}, views at {spec.url} "
        f"(every view but /health needs 'Authorization: Bearer <token>'; the token is "
        f"{auth.token_source()})",
        highlight=False,
    )
    faust_app.run(stream_app, level)


@app.command()
def api(
    host: str | None = typer.Option(None, help="Interface (default: ECAP_API_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: ECAP_API_PORT)."),
    workers_count: int | None = typer.Option(
        None, "--workers", min=1, help="Processes (default: ECAP_API_WORKERS)."
    ),
) -> None:
    """Serve the REST API (docs/api.md) in the foreground with uvicorn."""
    import uvicorn

    from web.api.app import create_app

    settings = get_settings()
    try:
        create_app(settings)  # the signing key and the route matrix, checked before serving
        services.postgres(settings)
    except STARTUP_ERRORS as exc:
        raise _fail(str(exc), exc) from exc
    host = host or settings.api_host
    port = port or settings.api_port
    url = f"http://{host}:{port}{workers.API_PREFIX}"
    docs = f", docs at {url}/docs" if settings.api_docs_enabled else ""
    console.print(f"REST API at {url}{docs}; log in with POST {url}/auth/token", highlight=False)
    uvicorn.run(
        "web.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers_count or settings.api_workers,
        log_level=settings.log_level.lower(),
    )


def _admin() -> tuple[str, admin.AdminClient]:
    try:
        bootstrap = services.kafka().address
        return bootstrap, admin.admin_client(bootstrap)
    except (services.ServiceUnavailable, admin.BrokerUnreachable) as exc:
        raise _fail(str(exc)) from exc


@topics_app.command("create")
def topics_create() -> None:
    """Create every catalog topic that does not exist yet (safe to run again)."""
    outcome = admin.create_topics(_admin()[1], replication=get_settings().topic_replication)
    created = [name for name, what in outcome.items() if what == "created"]
    for name, what in outcome.items():
        console.print(f"  {name:<24} {what}")
    console.print(f"{len(created)} created, {len(outcome) - len(created)} already existed")


@topics_app.command("list")
def topics_list(
    all_topics: bool = typer.Option(False, "--all", help="Include topics outside the catalog."),
) -> None:
    """Show the catalog's topics: partitions, configuration and records held now."""
    bootstrap, client = _admin()
    names = [spec.name for spec in CATALOG]
    if all_topics:
        names += sorted(set(client.list_topics(timeout=10).topics) - set(names))
    infos = {info.name: info for info in admin.describe_topics(client, names)}
    counts = offsets.record_counts(bootstrap, names)
    table = Table(
        Column("topic", no_wrap=True),
        "partitions",
        "cleanup",
        "retention",
        "compression",
        "records",
    )
    for name in names:
        info = infos.get(name)
        if info is None:
            table.add_row(name, "-", "-", "-", "-", "[red]missing[/] (ecap topics create)")
            continue
        retention = info.config.get("retention.ms", "?")
        if retention.lstrip("-").isdigit():
            ms = int(retention)
            retention = "forever" if ms < 0 else f"{ms / 86_400_000:g} d"
        table.add_row(
            name,
            str(info.partitions),
            info.config.get("cleanup.policy", "?"),
            retention,
            info.config.get("compression.type", "?"),
            f"{counts.get(name, 0):,}",
        )
    console.print(table)
    console.print(f"{sum(counts.values()):,} records in {len(infos)} topics at {bootstrap}")


@schemas_app.command("export")
def schemas_export(directory: Path = typer.Argument(..., help="Folder to write into.")) -> None:
    """Write the JSON Schema of every event contract, one file per contract."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        path = directory / f"{name}.v{SCHEMA_VERSION}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        console.print(f"  wrote {path}")


# ---------------------------------------------------------------------- background workers

workers_app = typer.Typer(help="Run stream workers in the background.", no_args_is_help=True)
app.add_typer(workers_app, name="workers")


def _print_how_to_authenticate(urls: list[str]) -> None:
    """One example request with the API token, which is never printed itself."""
    apis = [url for url in urls if workers.API_PREFIX in url]
    if apis:
        token_url = apis[0].rsplit("/", 1)[0] + "/auth/token"
        console.print("  the REST API takes a user's token (docs/api.md), e.g.:")
        console.print(
            f"      curl -d username=USER -d password=PASSWORD {token_url}", highlight=False
        )
    guarded = [url for url in urls if not url.endswith("/health") and url not in apis]
    data = [url for url in guarded if not url.endswith("/metrics")] or guarded
    if data:
        console.print("  every view but /health needs the API token, e.g.:")
        console.print(f"      {auth.curl_example(data[0])}", highlight=False)


@workers_app.command("start")
def workers_start(
    names: list[str] = typer.Argument(
        None, help=f"Workers to start (default: every stream worker; '{workers.API}' too)."
    ),
    instances: int = typer.Option(1, min=1, help="Processes of each worker."),
) -> None:
    """Start workers in the background (logs under ECAP_HOME/logs); prints their views."""
    from ecap import workers_launcher

    try:
        services.reachable_kafka()  # here, rather than once in each worker's log
    except STARTUP_ERRORS as exc:
        raise _fail(str(exc), exc) from exc
    urls: list[str] = []
    for name in names or list(workers.WORKERS):
        for instance in range(instances):
            try:
                started = workers_launcher.start(name, instance)
            except (ValueError, auth.TokenError) as exc:
                raise _fail(str(exc)) from exc
            console.print(f"  {name}-{instance} (pid {started.pid}), log {started.log}")
            for url in started.views():
                console.print(f"      {url}", highlight=False)
            urls += started.views()
    _print_how_to_authenticate(urls)


@workers_app.command("stop")
def workers_stop() -> None:
    """Stop the workers started by 'ecap workers start'."""
    from ecap import workers_launcher

    for stopped in workers_launcher.stop():
        console.print(f"  {stopped.name}-{stopped.instance} stopped (pid {stopped.pid})")


@workers_app.command("status")
def workers_status() -> None:
    """Show the background workers and their web views."""
    from ecap import workers_launcher

    urls: list[str] = []
    for worker in workers_launcher.status():
        state = "[green]running[/]" if worker.running else "[red]stopped[/]"
        console.print(f"  {worker.name}-{worker.instance} {state}, log {worker.log}")
        for url in worker.views() if worker.running else []:
            console.print(f"      {url}", highlight=False)
            urls.append(url)
    _print_how_to_authenticate(urls)


def main() -> None:
    try:
        app()
    except STARTUP_ERRORS as exc:  # one a command did not catch itself
        _fail(str(exc), exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
