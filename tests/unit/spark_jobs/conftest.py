"""The CDNOW benchmark data, read straight from the files the ``lifetimes`` wheel ships.

``lifetimes`` is a test dependency for these files only: its own loader needs
``pkg_resources``, and its models are not used.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pandas as pd
import pytest


def _lifetimes_file(name: str) -> Path:
    try:
        distribution = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("the CDNOW tests need the 'lifetimes' package: pip install -e '.[dev]'")
    return Path(str(distribution.locate_file(f"lifetimes/datasets/{name}")))


@pytest.fixture(scope="session")
def cdnow_orders() -> pd.DataFrame:
    """The CDNOW sample's 6,919 orders by 2,357 customers (Jan 1997 - Jun 1998)."""
    orders = pd.read_csv(
        _lifetimes_file("CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        names=["customer_id", "customer_index", "date", "quantity", "amount"],
        dtype={"date": str},
    )
    orders["order_time"] = pd.to_datetime(orders["date"], format="%Y%m%d")
    return orders


@pytest.fixture(scope="session")
def cdnow_reference_summary() -> pd.DataFrame:
    """Hardie's published summary of the same customers (39-week calibration, in weeks,
    rounded to cents and hundredths of a week), indexed by customer_index."""
    summary = pd.read_csv(_lifetimes_file("cdnow_customers_summary_with_transactions.csv"))
    return summary.set_index("ID")
