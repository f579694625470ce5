"""A server missing when a command starts gave the right advice inside a traceback: 236
lines for ``ecap worker alerts`` without PostgreSQL, 65 lines and no advice at all for a
worker without its broker, the advice under 196 lines of librdkafka's log for ``ecap
topics create``. The advice is now printed alone, on stderr, with exit code 1; the
traceback only at debug level (``ECAP_LOG_LEVEL=DEBUG``).

Each case runs the real command line in a child process, on a port where nothing listens.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ecap.embedded.process import free_port

MAX_LINES = 2
"""The advice, wrapped by nothing (a terminal wraps it)."""


def _ecap(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    unset = ("ECAP_KAFKA_BOOTSTRAP", "ECAP_POSTGRES_DSN", "ECAP_REDIS_URL", "ECAP_LOG_LEVEL")
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "ecap.cli", *args],
        env={**environment, "ECAP_HOME": str(home), "COLUMNS": "80", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _nothing_at() -> str:
    return f"127.0.0.1:{free_port()}"


def test_a_worker_without_its_broker_prints_the_advice_alone(tmp_path: Path) -> None:
    result = _ecap(tmp_path, "worker", "transactions", ECAP_KAFKA_BOOTSTRAP=_nothing_at())
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) <= MAX_LINES, result.stderr
    assert "point ECAP_KAFKA_BOOTSTRAP at your broker" in result.stderr


def test_the_alerts_worker_without_postgresql_prints_the_advice_alone(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    result = _ecap(
        tmp_path,
        "worker",
        "alerts",
        ECAP_KAFKA_BOOTSTRAP=kafka_bootstrap,
        ECAP_POSTGRES_DSN=f"postgresql://ecap@{_nothing_at()}/ecap",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert len(result.stderr.splitlines()) <= MAX_LINES, result.stderr
    assert "point ECAP_POSTGRES_DSN at your server" in result.stderr


def test_creating_topics_without_a_broker_prints_the_advice_alone(tmp_path: Path) -> None:
    result = _ecap(tmp_path, "topics", "create", ECAP_KAFKA_BOOTSTRAP=_nothing_at())
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) <= MAX_LINES, result.stderr
    assert "point ECAP_KAFKA_BOOTSTRAP at your broker" in result.stderr


def test_at_debug_level_the_traceback_comes_with_the_advice(tmp_path: Path) -> None:
    result = _ecap(tmp_path, "worker", "transactions", ECAP_LOG_LEVEL="DEBUG")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: no kafka address")


def test_starting_background_workers_without_a_broker_prints_the_advice_alone(
    tmp_path: Path,
) -> None:
    result = _ecap(tmp_path, "workers", "start", ECAP_KAFKA_BOOTSTRAP=_nothing_at())
    assert result.returncode == 1
    assert result.stdout == ""  # and no worker started, to fail in its log
    assert len(result.stderr.splitlines()) <= MAX_LINES, result.stderr
    assert "point ECAP_KAFKA_BOOTSTRAP at your broker" in result.stderr
