"""The one place a SparkSession is built, so every batch job runs with the same settings.

Settings that matter for correctness, not only speed:

- ``spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS``: Spark's default (INT96) is a
  legacy encoding that delta-rs and pyarrow read only with special handling; Delta expects
  microsecond timestamps.
- ``spark.sql.session.timeZone=UTC`` (and the driver JVM's ``user.timezone``): event time is
  UTC everywhere in ECAP; the host's time zone would shift dates, and so the ``event_date``
  partitions, by its offset.
- ``PYSPARK_PYTHON``: Python workers must run this interpreter, the one that has
  confluent-kafka, pyarrow and the project installed, not whatever ``python3`` is first on
  PATH.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from pyspark.sql import SparkSession

from ecap.settings import get_settings

DEFAULT_DRIVER_MEMORY = "4g"

# Spark's default log4j profile prints INFO lines at start-up, before setLogLevel can run.
_LOG4J2_PROPERTIES = """\
rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{HH:mm:ss}} %p %c{{1}}: %m%n%ex
logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativecode.level = error
"""


def _log4j2_config(level: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"ecap-spark-log4j2-{level.lower()}.properties"
    text = _LOG4J2_PROPERTIES.format(level=level.lower())
    if not path.exists() or path.read_text() != text:
        # Written whole under another name, then renamed: a JVM starting in another process
        # never reads half a file.
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text)
        partial.replace(path)
    return path


def _local_shuffle_partitions() -> int:
    """Two shuffle partitions per core: enough to keep every core busy without paying for
    Spark's default of 200 tiny tasks on a laptop."""
    return 2 * (os.cpu_count() or 1)


def get_spark(
    app_name: str,
    master: str | None = None,
    *,
    driver_memory: str = DEFAULT_DRIVER_MEMORY,
    shuffle_partitions: int | None = None,
    ui: bool = False,
    log_level: str = "WARN",
) -> SparkSession:
    """Return the SparkSession for ``app_name``, creating it on first use.

    ``master`` defaults to ``ECAP_SPARK_MASTER`` (``local[*]``). Spark keeps one session per
    process: a second call returns the running session, and settings that only apply at JVM
    start (driver memory, master) keep the values of the first call.
    """
    master = master or get_settings().spark_master
    local = master.startswith("local")
    # PySpark picks the worker interpreter from this variable, not from any Spark setting.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if local:
        # The host name of a laptop or CI box may not resolve to a usable address.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if shuffle_partitions is None and local:
        shuffle_partitions = _local_shuffle_partitions()

    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", str(ui).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config(
            "spark.driver.extraJavaOptions",
            f"-Duser.timezone=UTC -Dlog4j2.configurationFile=file:{_log4j2_config(log_level)}",
        )
    )
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    return spark
