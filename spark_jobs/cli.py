"""``python -m spark_jobs``: the batch jobs from the command line (mounted as ``ecap spark``).

Every command prints its steps as it goes and a summary at the end: rows in and out per
job, the tables written with their Delta version, where the lake is, and the time taken.
``schedule`` reruns ingest → silver → gold every N minutes until Ctrl-C.

Spark and the jobs are imported when a command runs, not when this module is imported:
``ecap`` mounts it, and its other commands should not pay for loading Spark.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table

from ecap import services
from ecap.currency import REPORTING_CURRENCY
from spark_jobs import bronze
from spark_jobs.lake import Lake
from spark_jobs.options import DEFAULTS, RETENTION_HOURS, ModelOptions
from spark_jobs.report import JobReport, TableWrite

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

app = typer.Typer(
    name="spark",
    help="Batch jobs: Kafka into Delta Lake (bronze, silver) and the customer models (gold).",
    no_args_is_help=True,
    add_completion=False,
)

console = Console()
err_console = Console(stderr=True)


def _expected() -> tuple[type[Exception], ...]:
    """Errors whose message says what to do: printed on one line, exit code 1."""
    from spark_jobs.delta_io import DeltaIOError
    from spark_jobs.gold import GoldError
    from spark_jobs.ingest import IngestError
    from spark_jobs.kafka_source import KafkaReadError
    from spark_jobs.orders_file import OrdersFileError
    from spark_jobs.silver import SilverError

    return (
        OrdersFileError,
        SilverError,
        GoldError,
        IngestError,
        KafkaReadError,
        DeltaIOError,
        services.ServiceUnavailable,
    )


LakeOption = Annotated[
    str | None,
    typer.Option(
        "--lake", help="Lake root, a folder or URI. Default: ECAP_LAKE_URI, else <ECAP_HOME>/lake."
    ),
]
OrdersOption = Annotated[
    str | None,
    typer.Option(
        "--orders",
        help="Model this order file (CSV or parquet: customer_id, order_time, amount, "
        "optionally order_id ...) instead of the lake's silver orders. See docs/batch.md.",
    ),
]
CurrencyOption = Annotated[
    str,
    typer.Option("--currency", help="Currency of the amounts of an order file without one."),
]
AsOfOption = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="Model as of this day (YYYY-MM-DD). Default: the last day with an order.",
    ),
]
BootstrapOption = Annotated[
    str | None,
    typer.Option(
        "--bootstrap",
        help="Kafka bootstrap servers. Default: ECAP_KAFKA_BOOTSTRAP, else the embedded broker.",
    ),
]


class _Steps:
    """Prints each step with the seconds since the command started."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        err_console.print(f"[dim]{time.monotonic() - self.started:7.1f} s[/]  {message}")


@contextmanager
def _errors() -> Iterator[None]:
    expected = _expected()
    try:
        yield
    except expected as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc


def _spark(job: str) -> SparkSession:
    from spark_jobs.session import get_spark

    # pyspark warns about pandas >= 3 on import of its pandas helpers; the jobs use only
    # what works (Arrow conversion, mapInPandas).
    warnings.filterwarnings("ignore", message=".*pandas.*", category=FutureWarning)
    return get_spark(f"ecap-{job}", log_level="ERROR")


def _bootstrap(given: str | None) -> str:
    return given or services.kafka().address


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def print_summary(reports: Sequence[JobReport], the_lake: Lake, started: float) -> None:
    """The jobs, the tables they wrote and where, the facts worth knowing, the time."""
    jobs = Table(title="batch run", header_style="bold")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("job", "left"),
        ("rows in", "right"),
        ("rows out", "right"),
        ("tables written (version)", "left"),
        ("elapsed", "right"),
    )
    for column, justify in columns:
        jobs.add_column(column, justify=justify)
    for report in reports:
        if report.skipped:
            written = f"[yellow]skipped:[/] {report.skipped}"
        else:
            written = ", ".join(
                f"{w.table} (v{w.version})" if w.committed else f"{w.table} (unchanged)"
                for w in report.writes
            )
        jobs.add_row(
            report.job,
            f"{report.rows_in:,}",
            f"{report.rows_out:,}",
            written or "-",
            f"{report.elapsed:.1f} s",
        )
    console.print(jobs)
    where = Table(title="tables", header_style="bold")
    where.add_column("table")
    where.add_column("version", justify="right")
    where.add_column("path (a Delta table)", overflow="fold")
    latest: dict[str, TableWrite] = {}
    for report in reports:
        for write in report.writes:
            latest[write.table] = write
    for name, write in latest.items():
        where.add_row(name, f"v{write.version}", write.path)
    if latest:
        console.print(where)
    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("lake", the_lake.root)
    for report in reports:
        for name, value in report.facts.items():
            facts.add_row(name, value)
    facts.add_row("elapsed", f"{time.monotonic() - started:.1f} s")
    console.print(facts)


def _gold(
    job: str, lake: str | None, orders: str | None, currency: str, options: ModelOptions
) -> None:
    started = time.monotonic()
    steps = _Steps()
    the_lake = Lake.at(lake)
    with _errors():
        from spark_jobs import chain

        spark = _spark(job)
        data = chain.load_silver(spark, the_lake, orders, currency=currency)
        try:
            report = chain.run_gold(job, the_lake, data, options, progress=steps)
        finally:
            data.release()
    print_summary([report], the_lake, started)


@app.command("ingest")
def ingest_command(
    lake: LakeOption = None,
    bootstrap: BootstrapOption = None,
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table", help=f"Only these bronze tables (repeatable): {', '.join(bronze.TABLES)}."
        ),
    ] = None,
    restart_topic: Annotated[
        list[str] | None,
        typer.Option(
            "--restart-topic",
            help="Read this topic from its earliest offset again (repeatable): for a topic "
            "that was recreated, e.g. after the embedded broker restarted.",
        ),
    ] = None,
) -> None:
    """Land new Kafka records in the bronze tables (incremental, exactly once)."""
    started = time.monotonic()
    the_lake = Lake.at(lake)
    with _errors():
        from spark_jobs import ingest

        address = _bootstrap(bootstrap)
        report = ingest.run(
            _spark("ingest"),
            address,
            the_lake,
            tables=table or tuple(bronze.TABLES),
            restart_topics=restart_topic or (),
            progress=_Steps(),
        )
    print_summary([report], the_lake, started)


@app.command("silver")
def silver_command(
    lake: LakeOption = None,
    orders: OrdersOption = None,
    currency: CurrencyOption = REPORTING_CURRENCY,
) -> None:
    """Rebuild the silver orders from bronze, or from an order file."""
    started = time.monotonic()
    the_lake = Lake.at(lake)
    with _errors():
        from spark_jobs import silver
        from spark_jobs.orders_file import read_orders_file

        spark = _spark("silver")
        source = read_orders_file(spark, orders, default_currency=currency) if orders else None
        report = silver.run(spark, the_lake, source, progress=_Steps())
    print_summary([report], the_lake, started)


@app.command("rfm")
def rfm_command(
    lake: LakeOption = None,
    orders: OrdersOption = None,
    currency: CurrencyOption = REPORTING_CURRENCY,
    as_of: AsOfOption = None,
) -> None:
    """Recency, frequency, monetary scores and the 11 segments (gold/rfm)."""
    _gold("rfm", lake, orders, currency, ModelOptions(as_of=_day(as_of)))


@app.command("clv")
def clv_command(
    lake: LakeOption = None,
    orders: OrdersOption = None,
    currency: CurrencyOption = REPORTING_CURRENCY,
    as_of: AsOfOption = None,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", min=1, help="Horizon of expected purchases.")
    ] = DEFAULTS.clv_horizon_days,
    months: Annotated[
        int, typer.Option("--months", min=1, help="Months of discounted CLV.")
    ] = DEFAULTS.clv_months,
    discount: Annotated[
        float, typer.Option("--monthly-discount", min=0.0, help="Monthly discount rate.")
    ] = DEFAULTS.monthly_discount,
    fit_sample: Annotated[
        int, typer.Option("--fit-sample", min=100, help="Fit on at most this many customers.")
    ] = DEFAULTS.clv_fit_sample,
) -> None:
    """Historical revenue and margin, and BG/NBD + Gamma-Gamma CLV per customer (gold/clv)."""
    options = ModelOptions(
        as_of=_day(as_of),
        clv_horizon_days=horizon_days,
        clv_months=months,
        monthly_discount=discount,
        clv_fit_sample=fit_sample,
    )
    _gold("clv", lake, orders, currency, options)


@app.command("churn")
def churn_command(
    lake: LakeOption = None,
    orders: OrdersOption = None,
    currency: CurrencyOption = REPORTING_CURRENCY,
    as_of: AsOfOption = None,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", min=1, help="Churn = no order in this many days.")
    ] = DEFAULTS.churn_horizon_days,
    active_days: Annotated[
        int,
        typer.Option("--active-days", min=1, help="Active = an order in this many days before."),
    ] = DEFAULTS.active_days,
    train_snapshots: Annotated[
        int, typer.Option("--train-snapshots", min=1, help="Training cutoffs before the test.")
    ] = DEFAULTS.train_snapshots,
) -> None:
    """Train and evaluate the churn model, save it, score active customers (gold/churn_scores)."""
    options = ModelOptions(
        as_of=_day(as_of),
        churn_horizon_days=horizon_days,
        active_days=active_days,
        train_snapshots=train_snapshots,
    )
    _gold("churn", lake, orders, currency, options)


@app.command("cohorts")
def cohorts_command(
    lake: LakeOption = None,
    orders: OrdersOption = None,
    currency: CurrencyOption = REPORTING_CURRENCY,
    as_of: AsOfOption = None,
) -> None:
    """Monthly acquisition cohorts, and daily revenue by category and region with margin."""
    _gold("cohorts", lake, orders, currency, ModelOptions(as_of=_day(as_of)))


@app.command("all")
def all_command(
    lake: LakeOption = None,
    orders: OrdersOption = None,
    currency: CurrencyOption = REPORTING_CURRENCY,
    bootstrap: BootstrapOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Ingest → silver → gold (or, with --orders, the file → silver → gold)."""
    started = time.monotonic()
    the_lake = Lake.at(lake)
    with _errors():
        from spark_jobs import chain

        spark = _spark("all")
        reports = chain.run_chain(
            spark,
            the_lake,
            bootstrap=None if orders else _bootstrap(bootstrap),
            orders_path=orders,
            currency=currency,
            options=ModelOptions(as_of=_day(as_of)),
            progress=_Steps(),
        )
    print_summary(reports, the_lake, started)


@app.command("maintain")
def maintain_command(
    lake: LakeOption = None,
    retention_hours: Annotated[
        int,
        typer.Option(
            "--retention-hours",
            min=0,
            help="Keep files that versions younger than this need (time travel window).",
        ),
    ] = RETENTION_HOURS,
) -> None:
    """Compact small files and vacuum old ones in every lake table."""
    started = time.monotonic()
    the_lake = Lake.at(lake)
    with _errors():
        from spark_jobs import maintain

        report = maintain.run(the_lake, retention_hours=retention_hours, progress=_Steps())
    print_summary([report], the_lake, started)


@app.command("schedule")
def schedule(
    every: Annotated[
        float, typer.Option("--every", min=0.1, help="Minutes between the starts of two runs.")
    ] = 15.0,
    lake: LakeOption = None,
    bootstrap: BootstrapOption = None,
    runs: Annotated[
        int | None, typer.Option("--runs", min=1, help="Stop after this many runs.")
    ] = None,
) -> None:
    """Rerun ingest → silver → gold every N minutes until Ctrl-C.

    A run whose ingest finds no new record stops after ingest. A run that fails prints
    why and the schedule goes on: the next run retries (ingest is exactly once).
    """
    the_lake = Lake.at(lake)
    done = 0
    expected = _expected()
    try:
        with _errors():
            from spark_jobs import chain

            address = _bootstrap(bootstrap)
            spark = _spark("schedule")
        console.print(
            f"every {every:g} min: ingest from {address} → silver → gold in {the_lake.root}; "
            "Ctrl-C stops"
        )
        while runs is None or done < runs:
            started = time.monotonic()
            console.rule(f"run {done + 1}, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
            try:
                reports = chain.run_chain(
                    spark,
                    the_lake,
                    bootstrap=address,
                    skip_if_unchanged=True,
                    progress=_Steps(),
                )
                print_summary(reports, the_lake, started)
            except expected as exc:
                err_console.print(f"[bold red]run failed:[/] {exc}", highlight=False)
            done += 1
            if runs is not None and done >= runs:
                break
            pause = every * 60 - (time.monotonic() - started)
            if pause > 0:
                console.print(f"[dim]next run in {pause:.0f} s[/]")
                time.sleep(pause)
    except KeyboardInterrupt:
        console.print(f"stopped after {done} run(s)")


def main() -> None:
    app()
