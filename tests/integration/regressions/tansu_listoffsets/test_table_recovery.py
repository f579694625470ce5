"""A Faust worker restarted on the embedded broker recovers its tables exactly.

Tansu 0.6.0 reports a partition's end too low (see ``ecap.patches.aiokafka_tansu``). Faust
reads that end as the high-water mark of each changelog during table recovery, so without
the workaround a restarted worker crashes (local RocksDB state kept) or silently recovers
too few updates (state wiped). Each test counts events per key in a RocksDB table and a
tumbling-window table, restarts the worker, sends more events, and checks every count.
"""

from __future__ import annotations

import signal

import pytest

from .deployment import KEYS, CounterDeployment, DeploymentFactory, WorkerDiedError

pytestmark = pytest.mark.integration

EVENTS_BEFORE_RESTART = 25
EVENTS_AFTER_RESTART = 10
TABLES = ("counts", "window_counts")


def expected_counts(events_per_key: int) -> dict[str, dict[str, int]]:
    """The worker's output for the last event of each key after ``events_per_key`` events."""
    return {
        key: {"seq": events_per_key - 1, "count": events_per_key, "window_count": events_per_key}
        for key in KEYS
    }


def count_then_restart(deployment: CounterDeployment, stop: signal.Signals, wipe: bool) -> None:
    """Count a first round of events, stop the worker with ``stop`` once it has committed
    them, optionally wipe its RocksDB state, and start it again."""
    deployment.start_worker()
    deployment.wait_until_ready()
    deployment.send_events(EVENTS_BEFORE_RESTART)
    assert deployment.wait_for_counts() == expected_counts(EVENTS_BEFORE_RESTART)
    deployment.wait_until_committed()
    deployment.stop_worker(stop)
    if wipe:
        deployment.wipe_state()
    deployment.start_worker()


def assert_tansu_still_reports_short_ends(deployment: CounterDeployment) -> None:
    """The precondition of the bug: the broker reports each changelog ending too early."""
    true_ends = deployment.sent_per_partition()
    for table in TABLES:
        reported = deployment.reported_changelog_ends(table)
        assert all(r < t for r, t in zip(reported, true_ends, strict=True)), (
            f"Tansu reported the true end of the {table} changelog ({reported}, true "
            f"{true_ends}). If test_end_offsets.py also says so, its ListOffsets bug is fixed "
            "and ecap.patches.aiokafka_tansu can go; otherwise the worker wrote a one-record "
            "last batch (see producer_linger in counter_app.py)"
        )


@pytest.mark.parametrize("wipe", [False, True], ids=["state-kept", "state-wiped"])
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restarted_worker_recovers_exact_counts_with_workaround(
    counter_deployment: DeploymentFactory, stop: signal.Signals, wipe: bool
) -> None:
    deployment = counter_deployment(tansu_compat=True)
    count_then_restart(deployment, stop, wipe)
    deployment.wait_until_ready()
    deployment.send_events(EVENTS_AFTER_RESTART)

    counts = deployment.wait_for_counts()

    assert counts == expected_counts(EVENTS_BEFORE_RESTART + EVENTS_AFTER_RESTART)


def test_without_workaround_worker_on_kept_state_crashes_with_consistency_error(
    counter_deployment: DeploymentFactory,
) -> None:
    deployment = counter_deployment(tansu_compat=False)
    count_then_restart(deployment, signal.SIGTERM, wipe=False)
    assert_tansu_still_reports_short_ends(deployment)

    with pytest.raises(WorkerDiedError) as died:
        deployment.wait_until_ready()

    assert "ConsistencyError" in died.value.log
    assert "persisted offset for changelog topic partition" in died.value.log


def test_without_workaround_worker_on_wiped_state_recovers_too_few_updates(
    counter_deployment: DeploymentFactory,
) -> None:
    deployment = counter_deployment(tansu_compat=False)
    count_then_restart(deployment, signal.SIGTERM, wipe=True)
    assert_tansu_still_reports_short_ends(deployment)
    deployment.wait_until_ready()
    deployment.send_events(EVENTS_AFTER_RESTART)

    counts = deployment.wait_for_counts()

    expected = EVENTS_BEFORE_RESTART + EVENTS_AFTER_RESTART
    short = {
        key: value
        for key, value in counts.items()
        if value["count"] < expected and value["window_count"] < expected
    }
    assert short == counts, f"every key should have lost updates in recovery, got {counts}"
