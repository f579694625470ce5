"""One fixed-seed generated stream, its KPIs computed offline, and the deployments that
process it: one worker process of each kind here (shared by the package's modules), two
in ``test_two_workers.py``.

The stream starts at the generator's anchor (a minute boundary) and lasts exactly three
minutes, so its last tumbling window closes a grace period after the stream goes quiet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecap.generator.stream import Stream, StreamConfig
from ecap.generator.wire import Record
from ecap.topics import TRANSACTIONS, USER_EVENTS

from .deployment import Deployment
from .expected import Expected, compute

SEED = 20261127
RATE = 200.0
DURATION_S = 180.0


@pytest.fixture(scope="package")
def stream() -> list[Record]:
    records = Stream(StreamConfig(rate=RATE, duration=DURATION_S, seed=SEED)).records()
    return [r for r in records if r.topic in (TRANSACTIONS, USER_EVENTS)]


@pytest.fixture(scope="package")
def expected(stream: list[Record]) -> Expected:
    return compute(stream)


def run_deployment(home: Path, instances: int, stream: list[Record]) -> Deployment:
    deployment = Deployment(home, instances)
    try:
        deployment.start()
        deployment.send(stream)
        deployment.wait_until_processed()
    except BaseException:
        deployment.close()
        raise
    return deployment


@pytest.fixture(scope="package")
def single(tmp_path_factory: pytest.TempPathFactory, stream: list[Record]) -> Iterator[Deployment]:
    """One transactions worker and one user-events worker, after the whole stream."""
    deployment = run_deployment(tmp_path_factory.mktemp("single"), 1, stream)
    yield deployment
    deployment.close()
