"""The alerts worker answered 404 on ``/health`` and ``/metrics``, though ``ecap workers
start`` printed both: its module registered no view. Every worker now gets both from the
composition root (``ecap.faust_app``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from ecap import auth, workers_launcher
from ecap.settings import Settings
from tests.integration.conftest import start_worker

READY_TIMEOUT_S = 60.0


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_the_alerts_worker_serves_health_and_metrics(worker_home: Settings) -> None:
    worker = start_worker(worker_home, "alerts")
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        status, body = 0, b""
        while status != 200:
            assert worker.running, worker.log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, f"/health answered {status}: {body!r}"
            time.sleep(0.3)
            try:
                status, body = _get(worker.url + "/health")
            except (urllib.error.URLError, ConnectionError):
                status = 0
        assert json.loads(body)["status"] == "ok"
        status, metrics = _get(worker.url + "/metrics", auth.header(worker_home))
        assert status == 200
        assert b"# TYPE ecap_events_total counter" in metrics
    finally:
        workers_launcher.stop(worker_home)
