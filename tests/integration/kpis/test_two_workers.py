"""Two processes of each worker answer every view as one process does, from either one.

The same stream goes through a second deployment with two transactions workers and two
user-events workers, which share the partitions. Answers are compared without ``as_of``
(offsets folded, watermark) and ``final`` (once traffic stops, the watermark follows the
wall clock, and the single deployment has been quiet for longer).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.partitioner import murmur2

from ecap.events import WindowKind
from ecap.generator.wire import Record
from ecap.kpis import sales
from ecap.topics import BY_NAME, TRANSACTIONS

from .conftest import run_deployment
from .deployment import Deployment
from .expected import Expected

SALES_PATHS = ["/kpis/current"] + [
    f"/kpis/timeseries?metric={metric}&window={window}&dimension={dimension}"
    for metric in sales.METRICS
    for window in ("tumbling_1m", "hopping_1h")
    for dimension in ("all", *sales.DIMENSIONS)
]
CLICKSTREAM_PATHS = [
    "/funnel?window=tumbling_1m",
    "/funnel?window=hopping_1h",
    "/funnel?window=total",
    "/sessions/active",
    *(f"/top?window={kind.value}" for kind in WindowKind),
]


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory, stream: list[Record]) -> Iterator[Deployment]:
    deployment = run_deployment(tmp_path_factory.mktemp("double"), 2, stream)
    yield deployment
    deployment.close()


def comparable(answer: Any) -> Any:
    """An answer without what depends on the moment it was taken."""
    if isinstance(answer, dict):
        return {k: comparable(v) for k, v in answer.items() if k not in ("as_of", "final")}
    if isinstance(answer, list):
        return [comparable(v) for v in answer]
    return answer


def answers(deployment: Deployment, name: str, index: int, paths: list[str]) -> dict[str, Any]:
    worker = deployment.workers[name][index]
    out = {}
    for path in paths:
        status, body = deployment.get(worker, path)
        assert status == 200, (path, body)
        out[path] = comparable(body)
    return out


@pytest.mark.parametrize("index", [0, 1])
def test_each_transactions_worker_answers_the_sales_views_as_one_worker_does(
    single: Deployment, double: Deployment, index: int
) -> None:
    assert answers(double, "transactions", index, SALES_PATHS) == answers(
        single, "transactions", 0, SALES_PATHS
    )


@pytest.mark.parametrize("index", [0, 1])
def test_each_user_events_worker_answers_the_clickstream_views_as_one_worker_does(
    single: Deployment, double: Deployment, index: int
) -> None:
    assert answers(double, "user-events", index, CLICKSTREAM_PATHS) == answers(
        single, "user-events", 0, CLICKSTREAM_PATHS
    )


def test_both_publish_the_same_final_minutes(single: Deployment, double: Deployment) -> None:
    def finals(deployment: Deployment) -> dict[tuple[Any, ...], float]:
        return {
            key: result["value"]
            for key, result in deployment.read_results().items()
            if result["final"] and key[1] == "tumbling_1m"
        }

    want = finals(single)
    deadline = time.monotonic() + 120
    while not want.keys() <= finals(double).keys() and time.monotonic() < deadline:
        double.check_alive()
        time.sleep(1)
    assert finals(double) == want


def test_user_risk_is_routed_to_the_owner_and_answers_from_either_worker(
    single: Deployment, double: Deployment, expected: Expected
) -> None:
    partitions = BY_NAME[TRANSACTIONS].partitions
    users: dict[int, str] = {}
    for tx in expected.transactions:
        users.setdefault((murmur2(tx.user_id.encode()) & 0x7FFFFFFF) % partitions, tx.user_id)
    assert len(users) == partitions
    owners = {
        p: worker.url
        for worker in double.workers["transactions"]
        for p in (double.health(worker) or {}).get("held_partitions", [])
    }
    assert set(owners.values()) == {w.url for w in double.workers["transactions"]}
    for partition, user in users.items():
        _, alone = single.get(single.workers["transactions"][0], f"/users/{user}/risk")
        for worker in double.workers["transactions"]:
            status, body = double.get(worker, f"/users/{user}/risk")
            assert status == 200, body
            assert body.pop("served_by") == owners[partition]
            assert body == {k: v for k, v in alone.items() if k != "served_by"}
