"""Two transactions worker processes share the partitions and raise exactly the alerts one
worker raises (the offline reference), with one case per alert."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from .conftest import Dataset, FraudDeployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory, database: str
) -> Iterator[FraudDeployment]:
    made = FraudDeployment(tmp_path_factory.mktemp("two"), database)
    try:
        made.start(instances=2)
        yield made
    finally:
        made.close()


def test_two_workers_raise_the_alerts_of_one_and_each_case_once(
    two_workers: FraudDeployment, dataset: Dataset, expected_alerts: set[str]
) -> None:
    views = [two_workers.detector(worker) or {} for worker in two_workers.workers]
    assert all(view["held_partitions"] for view in views), "a worker holds no partition"

    two_workers.send(dataset.transactions)
    two_workers.wait_until_processed()

    alerted = [alert.transaction_id for alert in two_workers.alerts()]
    assert set(alerted) == expected_alerts
    assert len(alerted) == len(set(alerted))
    two_workers.wait_for_cases(expected_alerts)
    cases = Counter(row["transaction_id"] for row in two_workers.cases())
    assert set(cases) == expected_alerts
    assert set(cases.values()) == {1}
