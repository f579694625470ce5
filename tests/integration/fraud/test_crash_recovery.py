"""SIGKILL the transactions worker while it processes a stream, restart it, and check that
nothing was lost or doubled: alerts, cases, per-user state and the anomaly model."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore

from ecap import workers, workers_launcher
from ecap.kafka import offsets
from tables.user_state import USER_STATE

from .conftest import PARTITIONS, USER_STATE_CHANGELOG, Dataset, FraudDeployment

pytestmark = pytest.mark.integration

CHUNK = 100
CHUNK_EVERY_S = 0.15


def _send_paced(deployment: FraudDeployment, dataset: Dataset) -> None:
    records = dataset.transactions
    for start in range(0, len(records), CHUNK):
        deployment.send(records[start : start + CHUNK])
        time.sleep(CHUNK_EVERY_S)


def _processed(deployment: FraudDeployment) -> int:
    view = deployment.detector(deployment.workers[0]) or {}
    return sum(offset + 1 for offset in view.get("processed", {}).values())


def test_a_worker_killed_under_load_and_restarted_loses_and_doubles_nothing(
    deployment: FraudDeployment, dataset: Dataset, expected_alerts: set[str]
) -> None:
    sender = threading.Thread(target=_send_paced, args=(deployment, dataset))
    sender.start()
    deadline = time.monotonic() + 60
    while _processed(deployment) < len(dataset.transactions) // 3:
        assert time.monotonic() < deadline, f"worker did not start processing\n{deployment.logs()}"
        time.sleep(0.05)
    killed = deployment.workers[0]
    deployment.kill(killed)
    sender.join()
    assert _processed(deployment) == 0, "the killed worker still answers"

    restarted = deployment.restart(killed)
    deployment.wait_until_assigned()
    deployment.wait_until_processed()

    frauds = {label.transaction_id for label in dataset.labels}
    alerted = {alert.transaction_id for alert in deployment.alerts()}
    assert expected_alerts & frauds <= alerted, "a labelled fraud lost its alert"
    deployment.wait_for_cases(alerted)
    cases = Counter(row["transaction_id"] for row in deployment.cases())
    assert set(cases) == alerted
    assert set(cases.values()) == {1}

    states = deployment.user_states()
    counts = {user: len(ids) for user, ids in dataset.by_user().items()}
    assert {user: states[user].count for user in counts} == counts
    assert "anomaly model restored" in deployment.log(restarted)


def test_a_stopped_worker_has_recorded_each_user_state_partition_up_to_its_changelog_end(
    deployment: FraudDeployment,
) -> None:
    """User state is written in bulk (``tables.store.RocksDBBulkStore``), not through Faust's
    table API; the offset Faust's recovery starts from must still be the changelog's last
    record, or a restart reads the changelog again (or, were it ahead, skips records)."""
    workers_launcher.stop(deployment.settings)
    ranges = offsets.partition_ranges(deployment.bootstrap, [USER_STATE_CHANGELOG])
    ends = {partition: end for (_, partition), (_, end) in ranges.items()}
    assert len(ends) == PARTITIONS
    datadir = workers.worker_spec("transactions", 0, 0, deployment.settings).datadir
    persisted = {}
    for partition in ends:
        (path,) = datadir.glob(f"**/{USER_STATE}-{partition}.db")
        db = rocksdict.Rdict(
            str(path),
            options=rocksdict.Options(raw_mode=True),
            access_type=rocksdict.AccessType.read_only(),
        )
        try:
            persisted[partition] = int(db[RocksDBStore.offset_key])
        finally:
            db.close()
    assert persisted == {partition: end - 1 for partition, end in ends.items()}
