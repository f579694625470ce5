"""``ecap up`` over a broker whose process is alive and whose port takes connections, but
which answers nothing (stopped with SIGSTOP, as a broker in the middle of shutting down)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ecap.embedded import broker, stack
from ecap.embedded.process import free_port, tcp_ready
from ecap.settings import Settings

pytestmark = pytest.mark.integration


def test_up_starts_a_broker_that_answers_instead_of_keeping_one_that_does_not(
    tmp_path: Path,
) -> None:
    settings = Settings(
        home=tmp_path,
        kafka_bootstrap=None,
        postgres_dsn="postgresql://unused@127.0.0.1:1/unused",
        redis_url="redis://127.0.0.1:1/0",
        embedded_kafka_port=free_port(),
    )
    first = stack.up(settings, lambda name, what: None)["kafka"]
    try:
        os.kill(first["pid"], signal.SIGSTOP)
        host, _, port = first["address"].rpartition(":")
        assert tcp_ready(host, int(port))
        said: dict[str, str] = {}
        second = stack.up(settings, lambda name, what: said.update({name: what}))["kafka"]
        assert second["pid"] != first["pid"], said["kafka"]
        assert broker.answers(second["address"])
    finally:
        stack.down(settings, lambda name, what: None)
        broker.stop(first)
