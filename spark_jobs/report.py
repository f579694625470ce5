"""What a job did, for the CLI's summary table and for callers: rows, tables, time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spark_jobs.delta_io import CommitResult

Progress = Callable[[str], None]
"""Told what a job is doing now, e.g. ``"reading transactions"``."""


def quiet(_: str) -> None:
    """A :data:`Progress` that shows nothing."""


@dataclass(frozen=True)
class TableWrite:
    """One table a job wrote: ``committed`` is False when the batch was already there."""

    table: str
    path: str
    rows: int
    version: int
    committed: bool


@dataclass
class JobReport:
    """One job's run: rows read, tables written, facts worth printing, seconds taken."""

    job: str
    rows_in: int = 0
    writes: list[TableWrite] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None
    """Why the job wrote nothing, when it could not be computed from the data."""
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0

    @property
    def rows_out(self) -> int:
        return sum(w.rows for w in self.writes if w.committed)

    def wrote(self, table: str, path: str, result: CommitResult) -> CommitResult:
        self.writes.append(
            TableWrite(table, path, result.rows, result.version, committed=result.committed)
        )
        return result

    def done(self) -> JobReport:
        self.elapsed = time.monotonic() - self.started
        return self
