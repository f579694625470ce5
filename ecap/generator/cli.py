"""``ecap generate``: the typer sub-app the main CLI mounts.

``stream`` sends a live, paced stream of sessions, transactions, product updates,
customer profiles and fraud labels to Kafka; ``history`` writes an order history to a
parquet/CSV file and/or Kafka. See ``docs/generator.md``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ecap import services, topics
from ecap.generator import history as history_module
from ecap.generator.runner import RunReport, run_records, run_stream
from ecap.generator.sinks import HISTORY_FORMATS, KafkaSink, LabelsFile, SinkError, write_table
from ecap.generator.stream import ANCHOR, Stream, StreamConfig

app = typer.Typer(
    name="generate",
    help="Generate realistic shop data: a live event stream or an order history.",
    no_args_is_help=True,
    add_completion=False,
)

console = Console()
err_console = Console(stderr=True)

STREAM_TOPICS = (
    topics.TRANSACTIONS,
    topics.USER_EVENTS,
    topics.PRODUCT_UPDATES,
    topics.CUSTOMERS,
    topics.FRAUD_LABELS,
)
HISTORY_TOPICS = (topics.TRANSACTIONS, topics.CUSTOMERS, topics.PRODUCT_UPDATES)


# ---------------------------------------------------------------------- option checks


def _positive(name: str, unit: str, example: str, upper: float) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not 0 < value <= upper:
            raise typer.BadParameter(
                f"{value:g} is out of range; it must be above 0 and at most {upper:,.0f} {unit}, "
                f"e.g. {name} {example}"
            )
        return value

    return check


def _fraction(value: float) -> float:
    if not 0 <= value <= 0.5:
        raise typer.BadParameter(
            f"{value:g} is not a fraction of transactions between 0 and 0.5; "
            "e.g. --fraud-rate 0.01 for 1%"
        )
    return value


def _count(name: str, low: int, high: int, example: str) -> Callable[[int | None], int | None]:
    def check(value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            raise typer.BadParameter(
                f"{value} is out of range; use {low} to {high:,}, e.g. {name} {example}"
            )
        return value

    return check


def _seed(value: int | None) -> int | None:
    if value is not None and not 0 <= value < 2**63:
        raise typer.BadParameter(f"{value} is not a seed; use a whole number from 0, e.g. --seed 1")
    return value


def parse_instant(value: str, option: str) -> datetime:
    """An ISO-8601 instant with a timezone, or 'now'."""
    if value.strip().lower() == "now":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time; use 'now' or e.g. {option} 2026-11-27T08:00:00Z",
            param_hint=option,
        ) from exc
    if parsed.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no timezone; add one, e.g. {option} {value.strip()}Z",
            param_hint=option,
        )
    return parsed.astimezone(UTC)


def fail(message: str) -> NoReturn:
    """Stop with a one-line error (exit code 1); the message says what to do."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def _kafka_sink(topics_needed: tuple[str, ...]) -> KafkaSink:
    try:
        sink = KafkaSink(services.kafka().address)
        sink.check(topics_needed)
    except (services.ServiceUnavailable, SinkError) as exc:
        fail(str(exc))
    return sink


# ---------------------------------------------------------------------- stream


@app.command()
def stream(
    rate: float = typer.Option(
        1000.0,
        "--rate",
        help="Records per wall-clock second at the start; the volume then follows the "
        "time-of-day and weekly curves of the simulated clock.",
        callback=_positive("--rate", "records/s", "2000", 1_000_000),
    ),
    duration: float = typer.Option(
        60.0,
        "--duration",
        help="Wall-clock seconds to run.",
        callback=_positive("--duration", "seconds", "30", 30 * 86_400),
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        help="Makes the run reproducible (byte-identical records); without it a random seed "
        "is used and printed.",
        callback=_seed,
    ),
    fraud_rate: float = typer.Option(
        0.01, "--fraud-rate", help="Fraction of purchases that are fraud.", callback=_fraction
    ),
    start: str | None = typer.Option(
        None,
        "--start",
        help="Simulated start: 'now' or an ISO-8601 time. Default: 2026-11-27T08:00:00Z "
        "with --seed, now without.",
    ),
    time_scale: float = typer.Option(
        1.0,
        "--time-scale",
        help="Simulated seconds per wall-clock second (60: a wall second is a shop minute).",
        callback=_positive("--time-scale", "", "60", 1_000_000),
    ),
    labels_file: Path | None = typer.Option(
        None, "--labels-file", help="Also write the fraud labels here, as JSON lines."
    ),
    customers: int | None = typer.Option(
        None,
        "--customers",
        help="Signed-up customers (3% more prospects may sign up during the run). Default: "
        "one per 25 records of the run, 100 to 2,000, so customers come back within a run.",
        callback=_count("--customers", 10, 1_000_000, "5000"),
    ),
) -> None:
    """Stream sessions, transactions, product updates, profiles and fraud labels to Kafka."""
    chosen_seed = seed if seed is not None else secrets.randbelow(2**31)
    if start is not None:
        begin = parse_instant(start, "--start")
    elif seed is not None:
        begin = ANCHOR
    else:
        begin = parse_instant("now", "--start")
    real_time = (start is None and seed is None) or (
        start is not None and start.strip().lower() == "now"
    )
    config = StreamConfig(
        rate=rate,
        duration=duration,
        seed=chosen_seed,
        fraud_rate=fraud_rate,
        start=begin,
        time_scale=time_scale,
        customers=customers,
    )
    problems = config.problems()
    if problems:
        raise typer.BadParameter(problems[0], param_hint="--duration")
    sink = _kafka_sink(STREAM_TOPICS)
    generator = Stream(config)
    labels = LabelsFile(labels_file) if labels_file is not None else None
    span_ms = generator.end_ms - generator.start_ms
    with _progress() as bar:
        task = bar.add_task("streaming", total=span_ms, records=0)

        def advance(sent: int, done_ms: int) -> None:
            bar.update(task, completed=min(done_ms, span_ms), records=sent)

        try:
            report = run_stream(
                generator, sink, labels=labels, real_time=real_time, progress=advance
            )
        except SinkError as exc:
            fail(str(exc))
    _summary(
        "ecap generate stream",
        report,
        [
            ("seed", str(chosen_seed)),
            ("simulated", f"{begin:%Y-%m-%d %H:%M:%S}Z + {span_ms / 1000:g} s"),
            ("labels file", f"{labels_file} ({report.labels_written})" if labels_file else "-"),
        ],
    )
    if report.delivery.failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- history


@app.command()
def history(
    customers: int = typer.Option(
        10_000,
        "--customers",
        help="Customers acquired over the period.",
        callback=_count("--customers", 1, 5_000_000, "20000"),
    ),
    days: int = typer.Option(
        730,
        "--days",
        help="Length of the history in days.",
        callback=_count("--days", 1, 3650, "730"),
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Makes the history reproducible.", callback=_seed
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the orders to this .parquet or .csv file."
    ),
    to_kafka: bool = typer.Option(
        False,
        "--to-kafka",
        help="Send full transactions (and profiles and the catalogue) with historical times.",
    ),
    end: str | None = typer.Option(
        None,
        "--end",
        help="End of the history, ISO-8601. Default: 2026-11-27T08:00:00Z (where "
        "'stream --seed' starts) with --seed, now without.",
    ),
) -> None:
    """Write an order history: heterogeneous customers, churn, seasonality, refunds."""
    if out is None and not to_kafka:
        raise typer.BadParameter(
            "nowhere to write; give --out PATH.parquet (or .csv), --to-kafka, or both",
            param_hint="--out",
        )
    if out is not None and out.suffix.lower() not in HISTORY_FORMATS:
        raise typer.BadParameter(
            f"{out} has an unknown format; name it .parquet or .csv, e.g. --out orders.parquet",
            param_hint="--out",
        )
    chosen_seed = seed if seed is not None else secrets.randbelow(2**31)
    if end is not None:
        until = parse_instant(end, "--end")
    elif seed is not None:
        until = ANCHOR
    else:
        until = parse_instant("now", "--end")
    config = history_module.HistoryConfig(
        customers=customers, days=days, seed=chosen_seed, end=until
    )
    sink = _kafka_sink(HISTORY_TOPICS) if to_kafka else None
    with err_console.status(f"drawing the history of {customers:,} customers"):
        orders = history_module.generate(config)
    rows = [("seed", str(chosen_seed)), ("period", f"{config.start:%Y-%m-%d} to {until:%Y-%m-%d}")]
    refunds = int(orders.refund.sum())
    rows.append(("orders", f"{len(orders) - refunds:,} purchases, {refunds:,} refunds"))
    if out is not None:
        with err_console.status(f"writing {out}"):
            write_table(history_module.to_table(orders), out)
        rows.append(("file", str(out)))
    report = RunReport()
    if sink is not None:
        total = len(orders) + orders.population.size + len(orders.population.catalogue)
        with _progress() as bar:
            task = bar.add_task("sending", total=total, records=0)

            def advance(sent: int, _at_ms: int) -> None:
                bar.update(task, completed=sent, records=sent)

            try:
                report = run_records(history_module.kafka_records(orders), sink, progress=advance)
            except SinkError as exc:
                fail(str(exc))
            bar.update(task, completed=total, records=report.total)
    _summary("ecap generate history", report, rows)
    if report.delivery.failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- output


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[records]:,} records"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def _summary(title: str, report: RunReport, facts: list[tuple[str, str]]) -> None:
    """Records per topic (generated and acknowledged), fraud per scenario, then the run."""
    if report.generated:
        table = Table(title=title, header_style="bold")
        table.add_column("topic")
        table.add_column("generated", justify="right")
        table.add_column("acknowledged", justify="right")
        for topic in sorted(report.generated):
            table.add_row(
                topic, f"{report.generated[topic]:,}", f"{report.delivery.delivered[topic]:,}"
            )
        table.add_row("[bold]total", f"[bold]{report.total:,}", f"[bold]{report.delivery.total:,}")
        if report.delivery.failed:
            table.add_row("[red]failed", "", f"[red]{report.delivery.failed:,}")
            for error, count in report.delivery.errors.most_common(3):
                table.add_row(f"[red]  {error}", "", f"{count:,}")
        console.print(table)
        facts = [
            *(
                (f"fraud: {scenario}", f"{count:,} transactions")
                for scenario, count in sorted(report.fraud.items())
            ),
            ("elapsed", f"{report.elapsed:.1f} s"),
            ("records/s", f"{report.rate:,.0f}"),
            *facts,
        ]
    run = Table(show_header=False, title=None if report.generated else title)
    run.add_column(style="bold")
    run.add_column()
    for name, value in facts:
        run.add_row(name, value)
    console.print(run)
