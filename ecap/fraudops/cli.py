"""``ecap rules``, ``ecap cases`` and ``ecap evaluate``: the typer sub-apps the main CLI mounts.

See docs/fraud-ops.md for the workflow: push rules, investigate cases, record verdicts,
evaluate against the generator's labels.
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import NoReturn

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from ecap import auth, db, services
from ecap.db import cases
from ecap.events import Verdict
from ecap.fraud import lifecycle
from ecap.fraud.rule_records import RuleSetError, SigningKey
from ecap.fraud.rules import RuleSet
from ecap.fraudops import detection_report, live_rules, verdicts
from ecap.topics import FRAUD_FEEDBACK

rules_app = typer.Typer(help="The live fraud rule set (topic fraud-rules).", no_args_is_help=True)
cases_app = typer.Typer(help="Fraud cases in PostgreSQL and verdicts.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Measure detection quality.", no_args_is_help=True)

console = Console()
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def _bootstrap() -> str:
    try:
        return services.kafka().address
    except services.ServiceUnavailable as exc:
        fail(str(exc))


def _dsn() -> str:
    try:
        return db.dsn()
    except services.ServiceUnavailable as exc:
        fail(str(exc))


# ---------------------------------------------------------------------- rules

REJECTIONS_SHOWN = 20


def _signing_key() -> SigningKey:
    """The rule-signing key of these settings, or why there is none."""
    try:
        return SigningKey(auth.rules_signing_key())
    except auth.TokenError as exc:
        return SigningKey(None, str(exc))


def _secret(key: SigningKey) -> bytes:
    if key.secret is None:
        fail(f"cannot sign the rule set: {key.problem}")
    return key.secret


def _live(bootstrap: str, key: SigningKey) -> live_rules.LiveRules:
    try:
        return live_rules.latest(bootstrap, key)
    except (RuleSetError, KafkaException) as exc:
        fail(str(exc))


def _push(
    bootstrap: str, ruleset: RuleSet, live: live_rules.LiveRules, key: SigningKey, what: str
) -> None:
    secret = _secret(key)
    if live.ruleset is not None and ruleset.version <= live.ruleset.version:
        running = live.ruleset.version
        fail(
            f"rule set version {ruleset.version} is not newer than the live version {running}; "
            f'set "version": {running + 1} or higher'
        )
    try:
        offset = live_rules.push(bootstrap, ruleset, secret)
    except RuleSetError as exc:
        fail(str(exc))
    enabled = sum(rule.enabled for rule in ruleset.rules)
    console.print(
        f"pushed {what} version {ruleset.version} ({enabled} of {len(ruleset.rules)} rules "
        f"enabled), signed, to fraud-rules at offset {offset}; running workers switch within "
        "a second"
    )


def _resign(bootstrap: str, live: live_rules.LiveRules, key: SigningKey) -> None:
    """Sign again the newest rule set on the topic (see docs/fraud-ops.md, "Signed rule
    sets"): it keeps its version if that is above the live one, else takes the next."""
    _secret(key)
    if live.newest is None:
        fail("fraud-rules holds no rule set to re-sign; push one with 'ecap rules push FILE'")
    offset, ruleset = live.newest
    if offset == live.offset:
        console.print(
            f"the live rule set (version {ruleset.version}, fraud-rules offset {offset}) is "
            "signed with this key already; nothing to re-sign"
        )
        return
    running = live.ruleset.version if live.ruleset is not None else None
    if running is not None and ruleset.version <= running:
        ruleset = RuleSet.model_validate({**ruleset.model_dump(), "version": running + 1})
    _push(bootstrap, ruleset, live, key, f"the rule set of fraud-rules offset {offset} as")


@rules_app.command("push")
def rules_push(
    file: Path | None = typer.Argument(
        None, help="Rule set JSON (see ecap/fraud/default_rules.json)."
    ),
    resign: bool = typer.Option(
        False,
        "--resign",
        help="Sign the newest rule set on fraud-rules again (after an upgrade to signed "
        "rule sets, or a new signing key); check it with 'ecap rules list' first.",
    ),
) -> None:
    """Validate a rule set file, sign it and make it the live rule set."""
    if (file is None) == (not resign):
        fail("give a rule set FILE, or --resign to sign the newest set on fraud-rules again")
    ruleset = None
    if file is not None:
        try:
            ruleset = live_rules.read_file(file)
        except RuleSetError as exc:
            fail(str(exc))
    key = _signing_key()
    _secret(key)
    bootstrap = _bootstrap()
    live = _live(bootstrap, key)
    if ruleset is None:
        _resign(bootstrap, live, key)
    else:
        _push(bootstrap, ruleset, live, key, "rule set")


@rules_app.command("list")
def rules_list() -> None:
    """Show the live rule set (or the shipped defaults when none was pushed) and the rule
    sets the workers refuse, with the reason."""
    key = _signing_key()
    live = _live(_bootstrap(), key)
    ruleset = live.effective()
    origin = (
        f"fraud-rules offset {live.offset}"
        if live.ruleset is not None
        else "shipped defaults (no signed rule set pushed)"
    )
    table = Table(
        title=f"rule set version {ruleset.version}: {origin}; alert at score "
        f">= {ruleset.threshold}",
        header_style="bold",
    )
    for name in ("id", "weight", "enabled", "description"):
        table.add_column(name, justify="right" if name == "weight" else "left")
    for rule in ruleset.rules:
        table.add_row(
            rule.id,
            f"{rule.weight:.2f}",
            "yes" if rule.enabled else "[red]no[/]",
            rule.description,
        )
    console.print(table)
    if key.secret is None:
        err.print(f"[bold red]no usable rule-signing key:[/] {key.problem}", highlight=False)
    shown = live.rejected[-REJECTIONS_SHOWN:]
    if len(live.rejected) > len(shown):
        earlier = len(live.rejected) - len(shown)
        err.print(f"[yellow]{earlier:,} earlier refused records not shown[/]")
    for rejection in shown:
        err.print(
            f"[yellow]refused by the workers:[/] offset {rejection.offset} "
            f"({rejection.reason.value}): {rejection.error}",
            highlight=False,
        )


@rules_app.command("disable")
def rules_disable(rule_id: str = typer.Argument(..., help="Id of the rule to switch off.")) -> None:
    """Publish a copy of the live rule set with one rule disabled (version + 1)."""
    key = _signing_key()
    _secret(key)
    bootstrap = _bootstrap()
    live = _live(bootstrap, key)
    current = live.effective()
    try:
        ruleset = current.disable(rule_id)
    except KeyError:
        known = ", ".join(rule.id for rule in current.rules)
        fail(f"no rule {rule_id!r} in rule set version {current.version}; rules: {known}")
    _push(bootstrap, ruleset, live, key, "rule set")


# ---------------------------------------------------------------------- cases


async def _list_cases(dsn: str, status: str | None, priority: str | None, limit: int) -> None:
    conn = await db.connect(dsn)
    try:
        await cases.check_schema(conn)
        rows = await cases.list_cases(conn, status=status, priority=priority, limit=limit)
        totals = await cases.count_by_status(conn)
    finally:
        await conn.close()
    table = Table(header_style="bold")
    columns = ("case", "priority", "score", "user", "merchant", "amount", "reasons", "status")
    for name in (*columns, "assignee"):
        table.add_column(name, justify="right" if name in ("case", "score", "amount") else "left")
    for case in rows:
        table.add_row(
            str(case.case_id),
            case.priority,
            f"{case.score:.2f}",
            case.user_id,
            case.merchant_id,
            f"{case.amount} {case.currency}",
            ", ".join(str(reason["code"]) for reason in case.reasons[:3]),
            f"closed: {case.resolution}" if case.resolution else case.status,
            case.assignee or "",
        )
    console.print(table)
    summary = ", ".join(f"{n:,} {s}" for s, n in sorted(totals.items())) or "no cases yet"
    console.print(f"{len(rows)} shown; {summary}")


@cases_app.command("list")
def cases_list(
    status: str = typer.Option(
        "open", help="open (any but closed), new, assigned, investigating, closed or all."
    ),
    priority: str | None = typer.Option(None, help="CRITICAL, HIGH, MEDIUM or LOW."),
    limit: int = typer.Option(20, min=1, max=10_000),
) -> None:
    """Show cases, highest priority first."""
    statuses = ("open", *(s.value for s in lifecycle.Status), "all")
    if status not in statuses:
        fail(f"unknown status {status!r}; use {', '.join(statuses)}")
    wanted = None if status == "all" else status
    try:
        asyncio.run(_list_cases(_dsn(), wanted, priority, limit))
    except (db.DatabaseUnavailable, cases.SchemaMissing) as exc:
        fail(str(exc))


async def _verdict(
    dsn: str, bootstrap: str, case_id: int, verdict: Verdict, note: str | None
) -> None:
    conn = await db.connect(dsn)
    try:
        await cases.check_schema(conn)
        recorded = await verdicts.decide(
            conn, bootstrap, case_id, verdict, note=note, decided_by=getpass.getuser()
        )
    except verdicts.FeedbackNotPublished as exc:
        fail(f"{exc} (run the same command again)")
    finally:
        await conn.close()
    was = f" (was {recorded.previous_status})" if recorded.previous_status != "new" else ""
    console.print(
        f"case {case_id}: closed as {recorded.case.resolution}{was}; published to "
        f"{FRAUD_FEEDBACK} for the detectors to learn"
    )


@cases_app.command("verdict")
def cases_verdict(
    case_id: int = typer.Argument(..., min=1, help="Case number from 'ecap cases list'."),
    confirmed: bool = typer.Option(False, "--confirmed", help="The alert was fraud."),
    false_positive: bool = typer.Option(False, "--false-positive", help="It was not fraud."),
    note: str | None = typer.Option(None, "--note", help="Why (kept with the verdict)."),
) -> None:
    """Record an investigator's verdict and publish it to the detectors."""
    if confirmed == false_positive:
        fail("give exactly one of --confirmed or --false-positive")
    verdict = Verdict.CONFIRMED if confirmed else Verdict.FALSE_POSITIVE
    try:
        asyncio.run(_verdict(_dsn(), _bootstrap(), case_id, verdict, note))
    except (
        db.DatabaseUnavailable,
        cases.SchemaMissing,
        cases.CaseNotFound,
        lifecycle.TransitionRefused,
    ) as exc:
        fail(str(exc))


# ---------------------------------------------------------------------- evaluate


@evaluate_app.command("fraud")
def evaluate_fraud(
    labels_file: Path | None = typer.Option(
        None, "--labels-file", help="Labels as JSON lines (default: the fraud-labels topic)."
    ),
    alerts_from: str = typer.Option(
        "topic", "--alerts-from", help="'topic' (fraud-alerts) or 'postgres' (the cases)."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the figures here."),
) -> None:
    """Precision, recall, F1, PR-AUC and latency of the alerts against the labels."""
    if alerts_from not in ("topic", "postgres"):
        fail(f"--alerts-from {alerts_from!r}: use 'topic' or 'postgres'")
    bootstrap = _bootstrap()
    try:
        with err.status("reading labels, alerts and transaction ids"):
            if labels_file is not None:
                labels = detection_report.labels_from_file(labels_file)
                labels_source = str(labels_file)
            else:
                labels = detection_report.labels_from_topic(bootstrap)
                labels_source = "topic fraud-labels"
            if alerts_from == "postgres":
                alerts = asyncio.run(detection_report.alerts_from_postgres(_dsn()))
            else:
                alerts = detection_report.alerts_from_topic(bootstrap)
            inputs = detection_report.Inputs(
                alerts,
                labels,
                detection_report.transaction_ids(bootstrap),
                {"labels_from": labels_source, "alerts_from": alerts_from},
                detection_report.unprocessed(bootstrap),
            )
    except (detection_report.EvaluationError, db.DatabaseUnavailable, KafkaException) as exc:
        fail(str(exc))
    if not labels:
        fail(
            "no fraud labels found; generate traffic with 'ecap generate stream --fraud-rate 0.01'"
        )
    result = detection_report.evaluate(inputs)
    console.print(detection_report.table(result))
    console.print(detection_report.latency_line(result))
    if inputs.unprocessed:
        err.print(
            f"[yellow]warning:[/] the transactions worker has {inputs.unprocessed:,} records "
            "left to process; recall may be understated until it catches up"
        )
    console.print(
        f"{len(inputs.transaction_ids):,} transactions, {len(labels):,} labelled frauds, "
        f"{len(alerts):,} alerts ({alerts_from}); PR-AUC from {result.overall.pr_auc_scores}"
    )
    if json_path is not None:
        detection_report.write_json(result, json_path)
        console.print(f"wrote {json_path}")
