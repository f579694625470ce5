"""An order history a user brings (``--orders PATH``): read, checked whole, then modelled.

The file is CSV (with a header row) or parquet. Column names are matched without regard
to case or surrounding spaces.

=================== ======== ==============================================================
column              required meaning
=================== ======== ==============================================================
customer_id         yes      who ordered
order_time          yes      when: a timestamp, a date, or ISO-8601 text
                             (``2024-03-01``, ``2024-03-01 10:00:00``,
                             ``2024-03-01T10:00:00+02:00``); no offset means UTC
amount              yes      what was paid (or refunded), >= 0, in ``currency``
order_id            no       the order's id; repeated ids are one order (first row wins).
                             Without it, every row is its own order
currency            no       ISO code from the FX table (:mod:`ecap.currency`);
                             without the column, amounts are in ``--currency`` (EUR)
type                no       ``purchase`` (or empty) or ``refund``
original_order_id   no       for a refund: the order it refunds (needs ``order_id``)
cost                no       cost of the goods of the order, in its currency, >= 0: gives margin
category, region,   no       carried through to the revenue tables
country,
payment_method,
channel
=================== ======== ==============================================================

Every row is checked before anything is written. A file with a problem raises
:class:`OrdersFileError` naming each problem, how many rows have it and a few examples,
and the lake is left as it was. An order file is history, so its order times are not
bounded by a record timestamp as the topics' are (``ecap.event_time``), only by what a
history can hold: from 1990-01-01 to the run's wall clock plus
``ECAP_EVENT_TIME_MAX_AHEAD``. A year 2999 or a 1970 (a zero) is a problem of the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ecap.currency import EUR_PER_UNIT, REPORTING_CURRENCY
from ecap.event_time import EARLIEST
from ecap.settings import get_settings
from spark_jobs.silver import LINE_COLUMNS, ORDER_EVENT_COLUMNS, PURCHASE, REFUND, OrderEvents

REQUIRED = ("customer_id", "order_time", "amount")
OPTIONAL = (
    "order_id",
    "currency",
    "type",
    "original_order_id",
    "cost",
    "category",
    "region",
    "country",
    "payment_method",
    "channel",
)
_TEXT_COLUMNS = ("category", "region", "country", "payment_method", "channel")
FORMATS = (".csv", ".parquet")
EXAMPLES = 3


class OrdersFileError(ValueError):
    """The order file cannot be used; the message names every problem found."""


@dataclass(frozen=True)
class Check:
    """One rule over the rows: ``bad`` is true for a row that breaks it."""

    column: str
    problem: str
    advice: str
    bad: Column
    shown: Column


def _read(spark: SparkSession, path: str) -> DataFrame:
    suffix = os.path.splitext(path.rstrip("/"))[1].lower()
    if suffix not in FORMATS:
        raise OrdersFileError(
            f"orders file {path}: unknown format {suffix or '(no extension)'!r}; give a .csv "
            "(with a header row) or a .parquet file"
        )
    if "://" not in path and not os.path.exists(path):
        raise OrdersFileError(f"orders file {path} does not exist")
    try:
        if suffix == ".csv":
            return (
                spark.read.option("header", True)
                .option("inferSchema", False)
                .option("mode", "PERMISSIVE")
                .csv(path)
            )
        return spark.read.parquet(path)
    except AnalysisException as exc:
        raise OrdersFileError(f"orders file {path} cannot be read: {exc}") from exc


def column_names(header: Sequence[str], path: str) -> list[str]:
    """The normalised names of a file's columns, or :class:`OrdersFileError`.

    Until the header has the required columns the file may be anything (``--orders
    /etc/passwd``), and its "column names" are its first line. So a message names ECAP's
    columns, found or missing, and only counts the others: it never echoes the file.
    """
    names = [c.strip().lower() for c in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        found = [c for c in (*REQUIRED, *OPTIONAL) if c in names]
        others = sum(1 for n in names if n not in REQUIRED and n not in OPTIONAL)
        unnamed = f" and {others} other column(s), not shown" if others else ""
        raise OrdersFileError(
            f"orders file {path} lacks the column(s) {', '.join(missing)}; of ECAP's columns "
            f"it has {', '.join(found) or 'none'}{unnamed}. Needed: {', '.join(REQUIRED)}; "
            f"optional: {', '.join(OPTIONAL)}. Give a .csv file whose first line names "
            "its columns, or a .parquet file"
        )
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise OrdersFileError(
            f"orders file {path} has the column(s) {', '.join(duplicated)} more than once"
        )
    if "original_order_id" in names and "order_id" not in names:
        raise OrdersFileError(
            f"orders file {path} has original_order_id but no order_id: a refund must name an "
            "order by its id"
        )
    return names


def _normalised_names(df: DataFrame, path: str) -> DataFrame:
    return df.toDF(*column_names(df.columns, path))


def _text(column: str) -> Column:
    value = F.trim(F.col(column).cast("string"))
    return F.when(value == "", None).otherwise(value)


def _timestamp(df: DataFrame, column: str) -> Column:
    kind = df.schema[column].dataType
    if isinstance(kind, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return F.col(column).cast("timestamp")
    if isinstance(kind, T.StringType):
        return F.try_to_timestamp(F.trim(F.col(column)))
    raise OrdersFileError(
        f"column {column} has type {kind.simpleString()}; it must hold dates or times "
        "(a timestamp or date column, or ISO-8601 text such as 2024-03-01T10:00:00Z)"
    )


def _number(df: DataFrame, column: str) -> Column:
    kind = df.schema[column].dataType
    if isinstance(kind, T.StringType):
        return F.expr(f"try_cast(trim(`{column}`) AS DOUBLE)")
    if isinstance(kind, T.NumericType):
        return F.col(column).cast("double")
    raise OrdersFileError(f"column {column} has type {kind.simpleString()}; it must hold numbers")


def _typed(df: DataFrame, default_currency: str) -> DataFrame:
    """The file's columns in their types, raw text kept as ``_raw_*`` for the messages."""
    present = set(df.columns)
    columns = {
        "customer_id": _text("customer_id"),
        "order_time": _timestamp(df, "order_time"),
        "amount": _number(df, "amount"),
        "order_id": _text("order_id") if "order_id" in present else F.lit(None).cast("string"),
        "currency": (
            F.upper(_text("currency")) if "currency" in present else F.lit(default_currency)
        ),
        "type": F.lower(_text("type")) if "type" in present else F.lit(None).cast("string"),
        "original_order_id": (
            _text("original_order_id")
            if "original_order_id" in present
            else F.lit(None).cast("string")
        ),
        "cost": _number(df, "cost") if "cost" in present else F.lit(None).cast("double"),
        **{c: _text(c) if c in present else F.lit(None).cast("string") for c in _TEXT_COLUMNS},
    }
    raw = {
        f"_raw_{c}": F.col(c).cast("string")
        for c in ("order_time", "amount", "currency", "type", "cost")
        if c in present
    }
    return df.select(
        *[expr.alias(name) for name, expr in columns.items()],
        *[expr.alias(name) for name, expr in raw.items()],
        F.monotonically_increasing_id().alias("_seq"),
    )


def _checks(df: DataFrame, has_order_id: bool) -> list[Check]:
    amount, cost = F.col("amount"), F.col("cost")
    known = list(EUR_PER_UNIT)
    latest = datetime.now(UTC) + get_settings().event_time_max_ahead
    in_range = F.col("order_time").between(F.lit(EARLIEST), F.lit(latest))
    checks = [
        Check(
            "customer_id",
            "is empty",
            "every order needs its customer",
            F.col("customer_id").isNull(),
            F.lit("(empty)"),
        ),
        Check(
            "order_time",
            "is not a date or time",
            "use ISO 8601, e.g. 2024-03-01 or 2024-03-01T10:00:00Z",
            F.col("order_time").isNull(),
            F.coalesce(F.col("_raw_order_time"), F.lit("(empty)")),
        ),
        Check(
            "order_time",
            f"is before {EARLIEST:%Y-%m-%d} or after {latest:%Y-%m-%d %H:%M} UTC (the run's "
            "clock plus ECAP_EVENT_TIME_MAX_AHEAD)",
            "fix those dates (a year typed wrong, a zero, seconds read as milliseconds)",
            F.col("order_time").isNotNull() & ~in_range,
            F.col("_raw_order_time"),
        ),
        Check(
            "amount",
            "is not a number",
            "write plain numbers with a dot for decimals, e.g. 12.50",
            amount.isNull() | F.isnan(amount) | (F.abs(amount) == float("inf")),
            F.coalesce(F.col("_raw_amount"), F.lit("(empty)")),
        ),
        Check(
            "amount",
            "is negative",
            "write a refund as its own row with type=refund, a positive amount and the "
            "original_order_id it refunds",
            amount < 0,
            F.col("_raw_amount"),
        ),
        Check(
            "currency",
            "is not a currency of the FX table",
            f"use one of {', '.join(known)}",
            ~F.coalesce(F.col("currency").isin(known), F.lit(False)),
            F.coalesce(F.col("currency"), F.lit("(empty)")),
        ),
    ]
    if "_raw_type" in df.columns:
        checks.append(
            Check(
                "type",
                f"is neither {PURCHASE} nor {REFUND}",
                f"leave it empty or write {PURCHASE} or {REFUND}",
                F.col("type").isNotNull() & ~F.col("type").isin(PURCHASE, REFUND),
                F.col("_raw_type"),
            )
        )
        checks.append(
            Check(
                "original_order_id",
                "is empty on a refund",
                "a refund names the order_id it refunds",
                (F.col("type") == REFUND) & F.col("original_order_id").isNull(),
                F.coalesce(F.col("customer_id"), F.lit("(empty)")),
            )
        )
    if has_order_id:
        checks.append(
            Check(
                "order_id",
                "is empty",
                "give every row an id, or drop the column to number the rows",
                F.col("order_id").isNull(),
                F.lit("(empty)"),
            )
        )
    if "_raw_cost" in df.columns:
        checks.append(
            Check(
                "cost",
                "is not a number >= 0",
                "leave it empty where unknown",
                F.col("_raw_cost").isNotNull() & (cost.isNull() | F.isnan(cost) | (cost < 0)),
                F.col("_raw_cost"),
            )
        )
    return checks


def _problems(df: DataFrame, checks: Sequence[Check], path: str) -> list[str]:
    """One line per broken rule, with counts and examples; computed in one pass."""
    counts = df.agg(
        F.count("*").alias("rows"),
        *[F.sum(F.when(c.bad, 1).otherwise(0)).alias(f"c{i}") for i, c in enumerate(checks)],
    ).collect()[0]
    if counts["rows"] == 0:
        raise OrdersFileError(f"orders file {path} has no rows")
    problems = []
    for i, check in enumerate(checks):
        bad = int(counts[f"c{i}"] or 0)
        if not bad:
            continue
        examples = [
            repr(row[0])
            for row in df.where(check.bad).select(check.shown).limit(EXAMPLES).collect()
        ]
        rows = "1 row" if bad == 1 else f"{bad:,} rows"
        problems.append(
            f"{check.column} {check.problem} in {rows} (e.g. {', '.join(examples)}); {check.advice}"
        )
    return problems


def read_orders_file(
    spark: SparkSession, path: str, *, default_currency: str = REPORTING_CURRENCY
) -> OrderEvents:
    """The order file at ``path`` as silver's input, or :class:`OrdersFileError`."""
    path = str(path)
    raw = _normalised_names(_read(spark, path), path)
    typed = _typed(raw, default_currency.upper())
    problems = _problems(typed, _checks(typed, "order_id" in raw.columns), path)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise OrdersFileError(f"orders file {path} cannot be used; nothing was written:\n{listed}")
    has_id = "order_id" in raw.columns
    order_id = F.col("order_id") if has_id else F.concat(F.lit("row-"), F.col("_seq"))
    events = typed.withColumns(
        {"order_id": order_id, "type": F.coalesce(F.col("type"), F.lit(PURCHASE))}
    ).select(*ORDER_EVENT_COLUMNS, "cost")
    lines = (
        events.where(F.col("type") == PURCHASE)
        .withColumns(
            {
                "line_no": F.lit(0),
                "product_id": F.lit(None).cast("string"),
                "quantity": F.lit(1),
                "line_amount": F.col("amount"),
                "unit_cost": F.col("cost"),
                "cost_currency": F.col("currency"),
            }
        )
        .select(*LINE_COLUMNS)
    )
    return OrderEvents(events.drop("cost"), lines, source=path)
