"""The gold tables as the API serves them: one in-memory snapshot, swapped whole.

:class:`GoldLake` holds, for each gold table, the Arrow table of one Delta version.
Requests query it with DuckDB, which scans the Arrow data in place: the lake is read once
per version, never per request. Correctness of a switch, in steps:

1. :meth:`GoldLake.refresh` (every ``poll_seconds`` on the app's lifespan, in a thread)
   asks each table for its latest version and reads only the tables whose version moved;
2. it builds a new :class:`Snapshot` from those and the unchanged tables of the current one;
3. it replaces the one reference ``_current``. A request takes that reference once, at its
   start (:meth:`GoldLake.read`), so it answers wholly from one snapshot, and the next
   request sees the new one.

``?version=N`` reads an earlier version of a route's first table (Delta time travel); the
few versions asked for lately are kept (:data:`HISTORY_SIZE`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import DeltaError

from spark_jobs import lake as tables
from spark_jobs.lake import Lake
from web.api.problems import Problem

POLL_SECONDS = 5.0
HISTORY_SIZE = 8
GOLD_TABLES = (
    tables.RFM,
    tables.CLV,
    tables.CHURN_SCORES,
    tables.COHORT_RETENTION,
    tables.DAILY_REVENUE,
)
NO_GOLD_HINT = "run `make spark-all` (or `ecap spark all`) to build the gold tables"
log = logging.getLogger(__name__)


def read_version(path: str, version: int | None = None) -> tuple[int, pa.Table]:
    """A Delta table's rows at ``version`` (latest when None), read by deltalake itself."""
    table = DeltaTable(path, version=version)
    reader = QueryBuilder().register("t", table).execute("SELECT * FROM t")
    return table.version(), pa.table(reader.read_all())


@dataclass(frozen=True)
class Snapshot:
    """One version of each gold table that exists, as Arrow tables."""

    tables: Mapping[str, pa.Table]
    versions: Mapping[str, int]


class View:
    """The tables one request reads, at the versions it reads them."""

    def __init__(self, db: duckdb.DuckDBPyConnection, relations: Mapping[str, pa.Table]) -> None:
        self._db = db
        self._relations = relations

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run ``sql`` (tables by their gold names, ``?`` parameters) over the snapshot."""
        cursor = self._db.cursor()
        try:
            for name, arrow in self._relations.items():
                cursor.register(name, arrow)
            result = cursor.execute(sql, list(params))
            columns = [d[0] for d in result.description or ()]
            return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
        finally:
            cursor.close()

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None


class GoldLake:
    """The gold tables of a lake, kept in memory at one version each."""

    def __init__(self, lake: Lake, poll_seconds: float = POLL_SECONDS) -> None:
        self.lake = lake
        self.poll_seconds = poll_seconds
        self._current = Snapshot({}, {})
        self._db = duckdb.connect()
        self._history: OrderedDict[tuple[str, int], pa.Table] = OrderedDict()
        self._history_lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    @property
    def snapshot(self) -> Snapshot:
        return self._current

    def refresh(self) -> Snapshot:
        """Read the tables whose latest version moved, then switch to the new snapshot."""
        with self._refresh_lock:
            current = self._current
            loaded: dict[str, pa.Table] = {}
            versions: dict[str, int] = {}
            for name in GOLD_TABLES:
                path = self.lake.gold(name)
                if not DeltaTable.is_deltatable(path):
                    continue
                latest = DeltaTable(path).version()
                if current.versions.get(name) == latest:
                    loaded[name], versions[name] = current.tables[name], latest
                    continue
                versions[name], loaded[name] = read_version(path, latest)
            if versions != current.versions:
                self._current = Snapshot(loaded, versions)
                log.info("gold snapshot switched to %s", versions)
            return self._current

    async def watch(self) -> None:
        """Refresh every ``poll_seconds`` until cancelled; a failed check is logged and
        retried, the current snapshot staying in use."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except (DeltaError, OSError):
                log.exception("checking the gold tables for a new version failed")

    def read(self, names: Sequence[str], version: int | None = None) -> tuple[View, dict[str, int]]:
        """A view of ``names`` from the current snapshot, the first at ``version`` when
        given, and the versions it reads. 503 when a table is not built yet; 404 when the
        first table has no such version."""
        snapshot = self._current
        missing = [name for name in names if name not in snapshot.versions]
        if missing:
            raise Problem(
                503,
                f"the lake at {self.lake.root} has no gold table {', '.join(missing)} yet",
                NO_GOLD_HINT,
                headers={"Retry-After": str(int(self.poll_seconds))},
            )
        relations = {name: snapshot.tables[name] for name in names}
        versions = {name: snapshot.versions[name] for name in names}
        if version is not None and version != versions[names[0]]:
            relations[names[0]] = self._at(names[0], version, versions[names[0]])
            versions[names[0]] = version
        return View(self._db, relations), versions

    def _at(self, name: str, version: int, latest: int) -> pa.Table:
        key = (name, version)
        with self._history_lock:
            if key in self._history:
                self._history.move_to_end(key)
                return self._history[key]
        if version > latest:
            raise self._no_version(name, version, latest)
        try:
            _, arrow = read_version(self.lake.gold(name), version)
        except DeltaError as exc:
            raise self._no_version(name, version, latest) from exc
        with self._history_lock:
            self._history[key] = arrow
            while len(self._history) > HISTORY_SIZE:
                self._history.popitem(last=False)
        return arrow

    @staticmethod
    def _no_version(name: str, version: int, latest: int) -> Problem:
        return Problem(
            404,
            f"gold table {name} has no version {version} (latest {latest})",
            "leave 'version' out for the latest, or pick one that 'maintain' has not vacuumed",
            errors=[{"field": "query.version", "problem": "no such table version"}],
        )


def etag(versions: Mapping[str, int]) -> str:
    """The entity tag of an answer computed from these table versions (the URL, which
    holds the filters, is the other half of the cache key)."""
    return '"gold-' + "-".join(f"{name}.{v}" for name, v in sorted(versions.items())) + '"'
