"""Spark ↔ Delta Lake: the one module that reads and writes the lake.

The Delta-Spark jars come from Maven, which these machines cannot reach, so the Delta log is
owned by ``deltalake`` (delta-rs) and Spark only ever reads and writes plain parquet:

- **Read:** a snapshot's file list goes to ``spark.read.parquet`` with ``basePath`` set to
  the table root, so partition columns come back from the ``col=value`` folders. The Delta
  schema is passed explicitly: files written before a column was added simply lack it.
- **Write:** Spark writes parquet into a staging folder under the table root; the driver
  moves the files into place (hive-style, ``root/col=value/part-....parquet``), reads each
  footer for statistics and commits them as add actions in one Delta transaction.
- **Exactly once:** a write may carry an application transaction ``(app_id, app_version)``.
  Delta keeps the last version committed per app id, so a re-run of an already committed
  batch commits nothing.

Tables must not use deletion vectors or column mapping: the parquet-level read above would
return deleted rows or wrong column names. Nothing here enables them.

A table has one writer at a time (one ingest or model job per table): the staging folder is
private to the write, but the idempotency check and the commit are two steps.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, Field, Schema
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    Transaction,
    create_table_with_add_actions,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

WriteMode = Literal["append", "overwrite"]

STAGING_DIR = "_ecap_staging"
# Spark's folder name for a null partition value; Delta records it as null.
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Partition values must have one obvious string form in both Spark folders and the Delta log.
_PARTITION_TYPES = {"string", "date", "byte", "short", "integer", "long", "boolean"}
# Longer strings get no max statistic: a truncated max would not bound the column.
_MAX_STRING_STAT = 32
DEFAULT_RETENTION_HOURS = 7 * 24


class DeltaIOError(RuntimeError):
    """A lake read or write could not be done as asked."""


class SchemaEvolutionError(DeltaIOError):
    """The data's schema is not the table's schema plus new nullable columns."""


@dataclass(frozen=True)
class CommitResult:
    """What a write did: ``committed`` is False when the batch was already in the table."""

    committed: bool
    version: int
    files: int
    rows: int


# --- reading -------------------------------------------------------------------------------


def table_exists(path: str) -> bool:
    return DeltaTable.is_deltatable(_normalize(path))


def _open(path: str, version: int | None = None, as_of: datetime | None = None) -> DeltaTable:
    if version is not None and as_of is not None:
        raise DeltaIOError("time travel takes a version or a timestamp, not both")
    try:
        table = DeltaTable(path)
    except TableNotFoundError as exc:
        raise DeltaIOError(f"no Delta table at {path}; run the job that creates it first") from exc
    latest = table.version()
    try:
        if version is not None:
            table.load_as_version(version)
        elif as_of is not None:
            table.load_as_version(as_of)
    except Exception as exc:
        wanted = f"version {version}" if version is not None else f"a version as of {as_of}"
        raise DeltaIOError(
            f"{path} has no {wanted}: versions run from 0 to {latest}, and old versions "
            f"disappear when the log is cleaned up ({exc})"
        ) from exc
    return table


def spark_schema(table: DeltaTable) -> StructType:
    """The table's schema as Spark sees it (Delta schemas are Spark's JSON format)."""
    return StructType.fromJson(json.loads(table.schema().to_json()))


def read_delta(
    spark: SparkSession,
    path: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
) -> DataFrame:
    """A snapshot of the table at ``path``: the latest, or ``version``, or the one current at
    ``as_of`` (a naive datetime is UTC)."""
    path = _normalize(path)
    table = _open(path, version, as_of)
    schema = spark_schema(table)
    files = table.file_uris()
    if not files:
        return spark.createDataFrame([], schema)
    df = spark.read.schema(schema).option("basePath", path).parquet(*files)
    return df.select(*[f"`{name}`" for name in schema.fieldNames()])


def commit_metadata(path: str, key: str) -> Any | None:
    """The value of ``key`` in the newest commit that recorded it, or None.

    Writers record e.g. the Kafka offsets they consumed with ``metadata={key: ...}``. Only
    commits still in the log are searched (``delta.logRetentionDuration``, 30 days by
    default), so a writer must commit at least that often to find its own record.
    """
    for commit in DeltaTable(_normalize(path)).history():
        if key in commit:
            return commit[key]
    return None


# --- schema --------------------------------------------------------------------------------


def _nullable(data_type: Any) -> Any:
    """A Spark/Delta JSON type with every nested field nullable, as parquet stores it."""
    if not isinstance(data_type, dict):
        return data_type
    kind = data_type["type"]
    if kind == "struct":
        return {
            **data_type,
            "fields": [
                {**f, "nullable": True, "type": _nullable(f["type"])} for f in data_type["fields"]
            ],
        }
    if kind == "array":
        return {
            **data_type,
            "containsNull": True,
            "elementType": _nullable(data_type["elementType"]),
        }
    if kind == "map":
        return {
            **data_type,
            "valueContainsNull": True,
            "keyType": _nullable(data_type["keyType"]),
            "valueType": _nullable(data_type["valueType"]),
        }
    return data_type


def _type_name(data_type: Any) -> str:
    return data_type if isinstance(data_type, str) else json.dumps(data_type)


def _data_schema(df: DataFrame) -> dict[str, Any]:
    """The DataFrame's schema as Delta JSON, all columns nullable (Spark writes them so)."""
    schema = _nullable(json.loads(df.schema.json()))
    assert isinstance(schema, dict)
    return schema


def _evolve(
    path: str, table_schema: dict[str, Any], data_schema: dict[str, Any]
) -> list[dict[str, Any]]:
    """The columns the data adds to the table; any other difference is an error."""
    data_fields = {f["name"]: f for f in data_schema["fields"]}
    for field in table_schema["fields"]:
        name = field["name"]
        if name not in data_fields:
            raise SchemaEvolutionError(
                f"column {name!r} of {path} is missing from the data; dropping a column is "
                "not supported (keep it, filled with nulls)"
            )
        old, new = _nullable(field["type"]), data_fields[name]["type"]
        if old != new:
            raise SchemaEvolutionError(
                f"column {name!r} of {path} would change type from {_type_name(old)} to "
                f"{_type_name(new)}; cast it back, or write to a new table"
            )
    known = {f["name"] for f in table_schema["fields"]}
    return [f for f in data_schema["fields"] if f["name"] not in known]


def _check_partitioning(path: str, schema: Mapping[str, Any], partition_by: Sequence[str]) -> None:
    types = {f["name"]: f["type"] for f in schema["fields"]}
    for column in partition_by:
        if column not in types:
            raise DeltaIOError(
                f"partition column {column!r} is not a column of the data for {path}"
            )
        if types[column] not in _PARTITION_TYPES:
            raise DeltaIOError(
                f"partition column {column!r} of {path} has type {_type_name(types[column])}; "
                f"partition by one of {sorted(_PARTITION_TYPES)} (e.g. a date derived from "
                "the event time)"
            )


# --- statistics ----------------------------------------------------------------------------


def _stat_value(value: Any, arrow_type: pa.DataType, is_max: bool) -> Any:
    """A parquet min/max as Delta writes it in ``stats``, or None to leave it out."""
    if pa.types.is_integer(arrow_type):
        return int(value)
    if pa.types.is_floating(arrow_type):
        return float(value) if math.isfinite(value) else None
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        if len(value) <= _MAX_STRING_STAT:
            return value
        return None if is_max else value[:_MAX_STRING_STAT]
    if pa.types.is_date32(arrow_type):
        assert isinstance(value, date)
        return value.isoformat()
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
        assert isinstance(value, datetime)
        # Delta statistics carry milliseconds: round the max up so it still bounds the column.
        value = value.astimezone(UTC)
        micros = value.microsecond % 1000
        if is_max and micros:
            value += timedelta(microseconds=1000 - micros)
        else:
            value -= timedelta(microseconds=micros)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return None


def file_stats(metadata: pq.FileMetaData) -> str:
    """Delta ``stats`` JSON (numRecords, minValues, maxValues, nullCount) from a footer.

    Covers top-level primitive columns; nested, binary, boolean, decimal and time-zone-less
    timestamp columns get no min/max, which only means readers cannot skip files by them.
    """
    arrow_schema = metadata.schema.to_arrow_schema()
    column_index = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    mins: dict[str, Any] = {}
    maxes: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for field in arrow_schema:
        index = column_index.get(field.name)
        if index is None:
            continue
        chunks = [metadata.row_group(g).column(index) for g in range(metadata.num_row_groups)]
        stats = [c.statistics for c in chunks]
        if not stats or any(s is None or not s.has_null_count for s in stats):
            continue
        nulls[field.name] = sum(s.null_count for s in stats)
        with_values = [s for s in stats if s.has_min_max]
        if not with_values:
            continue
        low = _stat_value(min(s.min for s in with_values), field.type, is_max=False)
        high = _stat_value(max(s.max for s in with_values), field.type, is_max=True)
        if low is not None:
            mins[field.name] = low
        if high is not None:
            maxes[field.name] = high
    return json.dumps(
        {"numRecords": metadata.num_rows, "minValues": mins, "maxValues": maxes, "nullCount": nulls}
    )


# --- writing -------------------------------------------------------------------------------


def _normalize(path: str) -> str:
    """Absolute, without a trailing slash: Spark, pyarrow and delta-rs must agree on it."""
    path = path.rstrip("/")
    return path if "://" in path else os.path.abspath(path)


def _partition_values(relative: str, partition_by: Sequence[str]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for segment in posixpath.dirname(relative).split("/"):
        if "=" not in segment:
            continue
        column, raw = segment.split("=", 1)
        values[column] = None if raw == _NULL_PARTITION else unquote(raw)
    if sorted(values) != sorted(partition_by):
        raise DeltaIOError(
            f"file {relative} is not laid out by partition columns {list(partition_by)}"
        )
    return values


def _publish(
    fs: pafs.FileSystem, staging: str, table_dir: str, partition_by: Sequence[str]
) -> list[AddAction]:
    """Move the staged parquet files that hold rows into the table folder, and describe them
    as add actions."""
    selector = pafs.FileSelector(staging, recursive=True)
    staged = [
        info
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.base_name.endswith(".parquet")
        and not info.base_name.startswith(("_", "."))
    ]
    actions = []
    for info in staged:
        with fs.open_input_file(info.path) as handle:
            metadata = pq.read_metadata(handle)
        if metadata.num_rows == 0:
            continue  # Spark's placeholder for an empty task; the log holds the schema
        relative = posixpath.relpath(info.path, staging)
        target = f"{table_dir}/{relative}"
        fs.create_dir(posixpath.dirname(target), recursive=True)
        fs.move(info.path, target)
        moved = fs.get_file_info(target)
        assert moved.size is not None
        assert moved.mtime_ns is not None
        actions.append(
            AddAction(
                # The plain relative path: delta-rs %-escapes it for the log itself.
                path=relative,
                size=moved.size,
                partition_values=_partition_values(relative, partition_by),
                modification_time=moved.mtime_ns // 1_000_000,
                data_change=True,
                stats=file_stats(metadata),
            )
        )
    return actions


def _write_files(df: DataFrame, path: str, partition_by: Sequence[str]) -> list[AddAction]:
    """Let Spark write ``df`` as parquet, then move the files under the table root.

    Spark writes into a fresh staging folder, so exactly this write's files are known. If the
    process dies between the move and the commit, the moved files are in no version: readers
    never see them and :func:`vacuum` deletes them.
    """
    fs, table_dir = pafs.FileSystem.from_uri(path)
    batch = uuid.uuid4().hex
    staging_root = f"{table_dir}/{STAGING_DIR}"
    staging = f"{staging_root}/{batch}"
    try:
        df.write.mode("errorifexists").partitionBy(*partition_by).parquet(
            f"{path}/{STAGING_DIR}/{batch}"
        )
        return _publish(fs, staging, table_dir, partition_by)
    finally:
        if fs.get_file_info(staging).type == pafs.FileType.Directory:
            fs.delete_dir(staging)
        others = fs.get_file_info(pafs.FileSelector(staging_root, allow_not_found=True))
        if not others and fs.get_file_info(staging_root).type == pafs.FileType.Directory:
            fs.delete_dir(staging_root)


def _num_records(action: AddAction) -> int:
    return int(json.loads(action.stats)["numRecords"])


def write_delta(
    df: DataFrame,
    path: str,
    *,
    mode: WriteMode = "append",
    partition_by: Sequence[str] = (),
    app_id: str | None = None,
    app_version: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite_schema: bool = False,
) -> CommitResult:
    """Write ``df`` to the Delta table at ``path`` in one commit, creating the table if needed.

    - ``mode="append"`` adds the rows; ``"overwrite"`` replaces the table's rows (gold tables).
    - ``app_id``/``app_version`` make the write idempotent: if the table already holds
      ``app_version`` (or a later one) for ``app_id``, nothing is written or committed.
    - ``metadata`` is stored in the commit (e.g. the Kafka offsets consumed); see
      :func:`commit_metadata`.
    - New nullable columns are added to the table's schema; a dropped column or a type change
      raises :class:`SchemaEvolutionError`, unless ``overwrite_schema`` with
      ``mode="overwrite"`` replaces the table's schema and partitioning.
    """
    path = _normalize(path)
    if (app_id is None) != (app_version is None):
        raise DeltaIOError("app_id and app_version go together")
    if overwrite_schema and mode != "overwrite":
        raise DeltaIOError("overwrite_schema needs mode='overwrite'")
    exists = table_exists(path)
    table = DeltaTable(path) if exists else None
    if table is not None and app_id is not None and app_version is not None:
        done = table.transaction_version(app_id)
        if done is not None and done >= app_version:
            return CommitResult(committed=False, version=table.version(), files=0, rows=0)

    data_schema = _data_schema(df)
    _check_partitioning(path, data_schema, partition_by)
    replace = table is None or overwrite_schema
    if table is not None and not replace:
        table_partitions = list(table.metadata().partition_columns)
        if table_partitions != list(partition_by):
            raise DeltaIOError(
                f"{path} is partitioned by {table_partitions}, not {list(partition_by)}"
            )
        added = _evolve(path, json.loads(table.schema().to_json()), data_schema)
        if added:
            # delta-rs keeps the table's schema on a write transaction, so new columns are
            # added by their own commit first. Alone, it is harmless: a nullable column that
            # no file holds yet reads as null.
            table.alter.add_columns([Field.from_json(json.dumps(f)) for f in added])

    actions = _write_files(df, path, partition_by)

    if not actions and mode == "append" and app_id is None and table is not None:
        return CommitResult(committed=False, version=table.version(), files=0, rows=0)
    properties = CommitProperties(
        custom_metadata=dict(metadata) if metadata else None,
        app_transactions=(
            [Transaction(app_id, app_version)]
            if app_id is not None and app_version is not None
            else None
        ),
    )
    if replace:
        create_table_with_add_actions(
            path,
            Schema.from_json(json.dumps(data_schema)),
            actions,
            mode="overwrite" if table is not None else "error",
            partition_by=list(partition_by),
            commit_properties=properties,
        )
    else:
        assert table is not None
        table.update_incremental()
        table.create_write_transaction(
            list[AddAction | RemoveAction](actions),
            mode=mode,
            schema=table.schema(),
            partition_by=list(partition_by),
            commit_properties=properties,
        )
    version = DeltaTable(path).version()
    return CommitResult(
        committed=True,
        version=version,
        files=len(actions),
        rows=sum(_num_records(a) for a in actions),
    )


# --- maintenance ---------------------------------------------------------------------------


def optimize(path: str, *, target_size: int | None = None) -> dict[str, Any]:
    """Compact small files into larger ones (a new version; old files stay until vacuum)."""
    metrics: dict[str, Any] = DeltaTable(_normalize(path)).optimize.compact(target_size=target_size)
    return metrics


def vacuum(
    path: str, *, retention_hours: int = DEFAULT_RETENTION_HOURS, dry_run: bool = False
) -> list[str]:
    """Delete files that no version younger than ``retention_hours`` needs.

    Time travel to versions older than the retention stops working for the files deleted.
    A retention below the table's ``delta.deletedFileRetentionDuration`` (7 days by default)
    is allowed on purpose: the lake has one writer per table and no long-running readers.
    """
    return DeltaTable(_normalize(path)).vacuum(
        retention_hours=retention_hours,
        dry_run=dry_run,
        enforce_retention_duration=False,
        full=True,
    )
