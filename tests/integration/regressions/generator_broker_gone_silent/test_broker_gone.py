"""The generator's Kafka sink, sending a paced stream, while its broker is stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.generator.sinks import BROKER_GONE_S, BrokerGone, KafkaSink
from ecap.generator.wire import Record
from ecap.kafka import admin
from ecap.topics import TRANSACTIONS

pytestmark = pytest.mark.integration

RUN_S = BROKER_GONE_S + 20


def _send_for(sink: KafkaSink, seconds: float) -> None:
    """Send a paced stream for ``seconds`` (what ``ecap generate stream`` does)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        sink.send(Record(TRANSACTIONS, b"u", b"{}", int(time.time() * 1000)))
        time.sleep(0.002)


def test_a_run_stops_soon_after_its_broker_goes_saying_what_was_acknowledged(
    tmp_path: Path,
) -> None:
    entry = broker.start("127.0.0.1", free_port(), tmp_path)
    try:
        admin.create_topics(admin.admin_client(entry["address"]), replication=1)
        sink = KafkaSink(entry["address"])
        for n in range(500):
            sink.send(Record(TRANSACTIONS, f"u{n}".encode(), b"{}", int(time.time() * 1000)))
        time.sleep(1.0)
        sink.send(Record(TRANSACTIONS, b"u", b"{}", int(time.time() * 1000)))
        broker.stop(entry)
        stopped = time.monotonic()
        with pytest.raises(BrokerGone) as gone:
            _send_for(sink, RUN_S)
        assert time.monotonic() - stopped < BROKER_GONE_S + 5
        assert "501 of the" in str(gone.value)
        assert "ecap topics create" in str(gone.value)
    finally:
        broker.stop(entry)
