"""One local SparkSession for every batch test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from spark_jobs.session import get_spark


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = get_spark("ecap-tests", "local[2]", driver_memory="2g")
    yield session
    session.stop()
