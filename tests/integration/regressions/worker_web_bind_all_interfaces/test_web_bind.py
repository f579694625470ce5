"""A worker's web views listened on every interface (0.0.0.0): Faust binds ``web_bind``,
which defaults to all interfaces, and only ``web_host`` (the advertised name) was set.
The worker must listen on ``ECAP_WEB_HOST`` alone."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from ecap import workers_launcher
from ecap.embedded.process import free_port
from ecap.kafka import admin
from ecap.settings import Settings

LISTEN_TIMEOUT_S = 60.0


def _listening(pid: int, port: int) -> set[str]:
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return {c.laddr.ip for c in connections if c.status == "LISTEN" and c.laddr.port == port}


def test_a_worker_listens_on_the_configured_web_host_only(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path, kafka_bootstrap=kafka_bootstrap)
    admin.create_topics(admin.admin_client(kafka_bootstrap), replication=1)
    port = free_port()
    worker = workers_launcher.start(
        "user-events",
        0,
        web_port=port,
        settings=settings,
        env={"ECAP_KAFKA_BOOTSTRAP": kafka_bootstrap},
    )
    try:
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while not (listening := _listening(worker.pid, port)):
            assert worker.running, worker.log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.2)
        assert listening == {settings.web_host}
    finally:
        workers_launcher.stop(settings)
