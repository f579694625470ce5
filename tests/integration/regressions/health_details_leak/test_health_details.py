"""A worker's open ``/health`` told anyone who could reach it its partitions, input
offsets and event times. Without the API token it now says only its status; with the
token it gives the details."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ecap import auth, workers_launcher
from ecap.kafka import admin
from ecap.settings import Settings
from tests.integration.conftest import start_worker

READY_TIMEOUT_S = 90.0


def _health(worker: workers_launcher.WorkerProcess, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(worker.url + "/health", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def home(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = Settings(home=tmp_path_factory.mktemp("health"), kafka_bootstrap=kafka_bootstrap)
    admin.create_topics(admin.admin_client(kafka_bootstrap), replication=1)
    yield settings
    workers_launcher.stop(settings)


@pytest.fixture(scope="module")
def worker(home: Settings) -> workers_launcher.WorkerProcess:
    """A user-events worker, once its ``/health`` says ``ok``."""
    started = start_worker(home, "user-events")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if _health(started, {})["status"] == "ok":
                return started
        except (urllib.error.URLError, ConnectionError):
            pass
        assert started.running, started.log.read_text(errors="replace")[-4000:]
        assert time.monotonic() < deadline, "the worker was not ready in time"
        time.sleep(0.3)


def test_health_without_the_token_says_only_the_status(
    worker: workers_launcher.WorkerProcess,
) -> None:
    assert _health(worker, {}) == {"status": "ok"}


def test_health_with_a_wrong_token_says_only_the_status(
    worker: workers_launcher.WorkerProcess,
) -> None:
    assert _health(worker, {"Authorization": "Bearer not-the-token"}) == {"status": "ok"}


def test_health_with_the_token_gives_partitions_offsets_and_event_times(
    worker: workers_launcher.WorkerProcess, home: Settings
) -> None:
    details = _health(worker, auth.header(home))
    assert details["status"] == "ok"
    assert details["worker"] == "user-events"
    assert isinstance(details["held_partitions"], list)
    assert {"watermark", "latest_event", "applied"} <= set(details["as_of"])
