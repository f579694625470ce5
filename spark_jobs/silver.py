"""Silver: the orders every model reads, cleaned once.

From bronze (or from an order file a user brings, :mod:`spark_jobs.orders_file`) to two
tables, both in euros (:mod:`spark_jobs.fx`):

- ``orders``: one row per purchase, **de-duplicated by id** (the first copy read wins),
  with its refunds **netted**: ``refunded_eur`` is the sum of the refunds that name it,
  capped at the purchase; ``net_eur = gross_eur - refunded_eur``. ``cost_eur`` is the cost
  of the goods kept (the lines' unit cost times quantity, scaled by the share not
  refunded); ``margin_eur = net_eur - cost_eur``. Cost is null when a line's product has
  no known cost.
- ``order_lines``: one row per line item, each line's share of the order's net amount
  (by its list value), its cost and margin, with the order's category, region and date.

Both are rebuilt from their sources on every run and overwrite the previous version (a
re-run on the same input writes the same rows). They are partitioned by ``order_month``.

Left out, and counted in the run's report: refunds whose purchase is unknown, (for
Kafka data) transactions in a currency without a rate (``ecap.currency.NO_RATE``: valid
records, whose amounts cannot be in euros; the live KPIs count them in ``orders`` but not
in ``revenue``), and orders whose time
is implausible: before 1990 or after the run's wall clock plus
``ECAP_EVENT_TIME_MAX_AHEAD`` (``ecap.event_time``; ingest already sets such records
aside, this catches rows landed before it did). Bronze keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ecap.event_time import EARLIEST
from ecap.settings import get_settings
from spark_jobs import delta_io, lake
from spark_jobs.fx import eur_rate
from spark_jobs.lake import Lake
from spark_jobs.report import JobReport, Progress, quiet

ORDER_EVENT_COLUMNS = (
    "order_id",
    "customer_id",
    "order_time",
    "type",
    "original_order_id",
    "amount",
    "currency",
    "category",
    "region",
    "country",
    "payment_method",
    "channel",
    "_seq",
)
"""Purchases and refunds, the input of :func:`build`, from bronze or an order file alike.
``_seq`` orders copies of one id (the smallest is kept)."""

LINE_COLUMNS = (
    "order_id",
    "_seq",
    "line_no",
    "product_id",
    "category",
    "quantity",
    "line_amount",
    "unit_cost",
    "cost_currency",
)
"""Line items of the purchases: list value (order currency) and unit cost (its own)."""

_ORDER_NAMES_IN_BRONZE = {
    "transaction_id": "order_id",
    "user_id": "customer_id",
    "event_time": "order_time",
    "original_transaction_id": "original_order_id",
}
"""Bronze transaction columns that hold an order column under their contract name."""

PURCHASE = "purchase"
REFUND = "refund"


class SilverError(RuntimeError):
    """Silver cannot be built from what the lake holds."""


@dataclass(frozen=True)
class OrderEvents:
    """Purchases, refunds and purchase lines from one source, before cleaning."""

    events: DataFrame
    lines: DataFrame
    source: str


@dataclass(frozen=True)
class Silver:
    orders: DataFrame
    order_lines: DataFrame
    cached: tuple[DataFrame, ...] = ()

    def release(self) -> None:
        """Free what :func:`build` cached."""
        for frame in self.cached:
            frame.unpersist()


# --- from bronze ---------------------------------------------------------------------------


def from_bronze(spark: SparkSession, the_lake: Lake) -> OrderEvents:
    """Transactions, their line items and the latest product costs, from bronze."""
    path = the_lake.bronze(lake.TRANSACTIONS)
    if not delta_io.table_exists(path):
        raise SilverError(
            f"no bronze transactions at {path}; run 'python -m spark_jobs ingest' first, or "
            "build silver from a file with --orders PATH"
        )
    seq = F.col("_kafka_partition").cast("long") * F.lit(1 << 40) + F.col("_kafka_offset")
    tx = delta_io.read_delta(spark, path)
    events = (
        tx.withColumnsRenamed(_ORDER_NAMES_IN_BRONZE)
        .withColumn("_seq", seq)
        .select(*ORDER_EVENT_COLUMNS)
    )
    items = delta_io.read_delta(spark, the_lake.bronze(lake.TRANSACTION_ITEMS)).where(
        F.col("type") == PURCHASE
    )
    products_path = the_lake.bronze(lake.PRODUCT_UPDATES)
    if delta_io.table_exists(products_path):
        products = delta_io.read_delta(spark, products_path).select(
            "product_id", F.col("cost").alias("unit_cost"), F.col("currency").alias("cost_currency")
        )
    else:
        products = spark.createDataFrame(
            [], "product_id STRING, unit_cost DOUBLE, cost_currency STRING"
        )
    lines = (
        items.join(F.broadcast(products), "product_id", "left")
        .withColumnsRenamed({"transaction_id": "order_id"})
        .withColumn("_seq", seq)
        .select(*LINE_COLUMNS)
    )
    return OrderEvents(events, lines, source=path)


# --- cleaning ------------------------------------------------------------------------------


def _first_copy(events: DataFrame) -> DataFrame:
    """One row per order id: the copy with the smallest ``_seq``; ``_copies`` says how
    many there were."""
    by_id = Window.partitionBy("order_id")
    return (
        events.withColumn("_copies", F.count("*").over(by_id))
        .withColumn("_copy", F.row_number().over(by_id.orderBy("_seq")))
        .where(F.col("_copy") == 1)
        .drop("_copy")
    )


def _month(day: Column) -> Column:
    return F.date_format(day, "yyyy-MM")


def _count_input(unique: DataFrame, report: JobReport) -> None:
    """Rows read, duplicates dropped and currencies without a rate, from the de-duplicated
    rows."""
    found = unique.agg(
        F.sum("_copies").alias("rows"),
        F.sum(F.col("_copies") - 1).alias("duplicates"),
        F.count(F.when(F.col("eur_per_unit").isNull(), 1)).alias("unknown"),
    ).collect()[0]
    report.rows_in = int(found["rows"] or 0)
    if found["duplicates"]:
        report.facts["duplicate order ids"] = f"{found['duplicates']:,} copies dropped"
    if found["unknown"]:
        codes = unique.where(F.col("eur_per_unit").isNull()).groupBy("currency").count().collect()
        report.facts["currency without a rate (left out)"] = ", ".join(
            f"{row['currency']} ({row['count']:,} orders)" for row in codes
        )


def _in_time(unique: DataFrame, report: JobReport, now: datetime) -> DataFrame:
    """The rows whose order time is plausible; the others are counted and left out."""
    latest = now + get_settings().event_time_max_ahead
    plausible = F.col("order_time").between(F.lit(EARLIEST), F.lit(latest))
    out = unique.where(~plausible).count()
    if out:
        report.facts["order time out of range (left out)"] = (
            f"{out:,} {'order' if out == 1 else 'orders'} before {EARLIEST:%Y-%m-%d} or "
            f"after {latest:%Y-%m-%d %H:%M} UTC"
        )
    return unique.where(plausible)


def build(source: OrderEvents, report: JobReport, *, now: datetime | None = None) -> Silver:
    """Clean ``source`` into the silver tables (see the module docstring); ``now`` (default:
    the wall clock) bounds the order times.

    The de-duplicated events, the netted orders and the lines are each computed once and
    cached: both tables and the counts read them. :meth:`Silver.release` frees them.
    """
    unique = _first_copy(source.events.withColumn("eur_per_unit", eur_rate(F.col("currency"))))
    unique = unique.persist()
    _count_input(unique, report)
    timely = _in_time(unique, report, now or datetime.now(UTC))
    known = timely.where(F.col("eur_per_unit").isNotNull())
    purchases = known.where(F.col("type") == PURCHASE).drop("type", "original_order_id")
    refunds = (
        known.where(F.col("type") == REFUND)
        .groupBy(F.col("original_order_id").alias("order_id"))
        .agg(F.sum("amount").alias("_refunds"), F.count("*").alias("_refund_count"))
    )
    netted = (
        purchases.join(refunds, "order_id", "left")
        .withColumn(
            "refunded_amount", F.least(F.coalesce(F.col("_refunds"), F.lit(0.0)), F.col("amount"))
        )
        .withColumn("gross_eur", F.col("amount") * F.col("eur_per_unit"))
        .withColumn("refunded_eur", F.col("refunded_amount") * F.col("eur_per_unit"))
        .withColumn("net_eur", F.col("gross_eur") - F.col("refunded_eur"))
        .withColumn(
            "kept_share",
            F.when(F.col("amount") > 0, 1 - F.col("refunded_amount") / F.col("amount")).otherwise(
                F.lit(0.0)
            ),
        )
        .withColumn("order_date", F.to_date("order_time"))
        .withColumn("order_month", _month(F.col("order_date")))
    ).persist()
    matched = netted.agg(F.sum("_refund_count")).collect()[0][0] or 0
    total = known.where(F.col("type") == REFUND).count()
    if total > matched:
        report.facts["refunds without their purchase"] = f"{total - matched:,} (left out)"

    in_order = Window.partitionBy("order_id")
    lines = (
        source.lines.join(
            netted.select(
                "order_id",
                "_seq",
                "customer_id",
                "order_time",
                "order_date",
                "order_month",
                "region",
                "net_eur",
                "kept_share",
            ),
            ["order_id", "_seq"],
        )
        .withColumn("_lines", F.count("*").over(in_order))
        .withColumn("_list_total", F.sum("line_amount").over(in_order))
        .withColumn(
            "_share",
            F.when(F.col("_list_total") > 0, F.col("line_amount") / F.col("_list_total")).otherwise(
                1.0 / F.col("_lines")
            ),
        )
        .withColumn("net_eur", F.col("net_eur") * F.col("_share"))
        .withColumn(
            "cost_eur",
            F.col("quantity")
            * F.col("unit_cost")
            * eur_rate(F.col("cost_currency"))
            * F.col("kept_share"),
        )
        .withColumn("margin_eur", F.col("net_eur") - F.col("cost_eur"))
    ).persist()
    order_lines = lines.select(
        "order_id",
        "line_no",
        "customer_id",
        "order_time",
        "order_date",
        "order_month",
        "product_id",
        "category",
        "region",
        "quantity",
        "net_eur",
        "cost_eur",
        "margin_eur",
    )
    costs = lines.groupBy("order_id").agg(
        F.count("*").alias("line_count"),
        # Null unless every line has a cost: a partial cost would overstate the margin.
        F.when(F.count("cost_eur") == F.count("*"), F.sum("cost_eur")).alias("cost_eur"),
    )
    orders = (
        netted.join(costs, "order_id", "left")
        .withColumn("margin_eur", F.col("net_eur") - F.col("cost_eur"))
        .select(
            "order_id",
            "customer_id",
            "order_time",
            "order_date",
            "order_month",
            "currency",
            "amount",
            "refunded_amount",
            "eur_per_unit",
            "gross_eur",
            "refunded_eur",
            "net_eur",
            "cost_eur",
            "margin_eur",
            "category",
            "region",
            "country",
            "payment_method",
            "channel",
            F.coalesce(F.col("line_count"), F.lit(0)).alias("line_count"),
        )
    )
    return Silver(orders, order_lines, cached=(unique, netted, lines))


def paid_orders(orders: DataFrame) -> DataFrame:
    """The orders the customer models count: those not entirely refunded."""
    return orders.where(F.col("net_eur") > 0)


def write(silver: Silver, the_lake: Lake, report: JobReport, progress: Progress = quiet) -> None:
    """Overwrite the silver tables (one commit each)."""
    for name, df in ((lake.ORDERS, silver.orders), (lake.ORDER_LINES, silver.order_lines)):
        path = the_lake.silver(name)
        progress(f"writing silver/{name}")
        result = delta_io.write_delta(
            df.repartition("order_month"),
            path,
            mode="overwrite",
            partition_by=["order_month"],
            overwrite_schema=True,
        )
        report.wrote(f"silver/{name}", path, result)


def read_orders(spark: SparkSession, the_lake: Lake) -> DataFrame:
    """The silver orders, for the gold jobs."""
    path = the_lake.silver(lake.ORDERS)
    if not delta_io.table_exists(path):
        raise SilverError(
            f"no silver orders at {path}; run 'python -m spark_jobs silver' first, or give "
            "the job an order file with --orders PATH"
        )
    return delta_io.read_delta(spark, path)


def read_order_lines(spark: SparkSession, the_lake: Lake) -> DataFrame:
    return delta_io.read_delta(spark, the_lake.silver(lake.ORDER_LINES))


def run(
    spark: SparkSession,
    the_lake: Lake,
    source: OrderEvents | None = None,
    *,
    progress: Progress = quiet,
) -> JobReport:
    """Build and write silver from ``source`` (default: the lake's bronze tables)."""
    report = JobReport("silver")
    source = source or from_bronze(spark, the_lake)
    progress(f"building silver from {source.source}")
    report.facts["silver source"] = source.source
    built = build(source, report)
    try:
        write(built, the_lake, report, progress)
    finally:
        built.release()
    return report.done()
