"""The knobs of the jobs and their defaults, in one place (see docs/batch.md).

Kept free of Spark on purpose: the command line reads these defaults when it starts, and
``ecap`` mounts it, so importing this module must cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

RETENTION_HOURS = 168
"""What ``maintain`` keeps: files that versions younger than this need (7 days)."""


@dataclass(frozen=True)
class ModelOptions:
    """The gold jobs' settings; every field has the default the jobs use."""

    as_of: date | None = None
    clv_horizon_days: int = 90
    clv_months: int = 12
    monthly_discount: float = 0.01
    clv_fit_sample: int = 100_000
    churn_horizon_days: int = 90
    active_days: int = 365
    train_snapshots: int = 2


DEFAULTS = ModelOptions()
