"""`ecap up / status / down` on a temporary ECAP_HOME, with real embedded servers."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis as redis_client

from ecap import services
from ecap.embedded import stack
from ecap.embedded.process import StartError, free_port
from ecap.settings import Settings


def _settings(home: Path, port: int) -> Settings:
    return Settings(
        home=home,
        kafka_bootstrap=None,
        postgres_dsn=None,
        redis_url=None,
        embedded_kafka_port=port,
    )


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict]]:
    settings = _settings(tmp_path_factory.mktemp("home"), free_port())
    started = stack.up(settings, lambda name, what: None)
    yield settings, started
    stack.down(settings, lambda name, what: None)


def test_up_starts_all_three_servers(running: tuple[Settings, dict]) -> None:
    settings, _ = running
    assert [(s.name, s.mode, s.running) for s in stack.status(settings)] == [
        ("kafka", "embedded", True),
        ("postgres", "embedded", True),
        ("redis", "embedded", True),
    ]


def test_other_processes_find_the_addresses_in_the_home(running: tuple[Settings, dict]) -> None:
    settings, started = running
    assert services.kafka(settings).address == started["kafka"]["address"]
    assert services.kafka(settings).embedded is True
    assert services.postgres(settings).address == started["postgres"]["address"]
    assert services.redis(settings).address == started["redis"]["address"]


def test_embedded_postgres_answers_queries(running: tuple[Settings, dict]) -> None:
    settings, _ = running

    async def query() -> int:
        conn = await asyncpg.connect(services.postgres(settings).address)
        try:
            return int(await conn.fetchval("SELECT 40 + $1::int", 2))
        finally:
            await conn.close()

    assert asyncio.run(query()) == 42


def test_embedded_redis_stores_values(running: tuple[Settings, dict]) -> None:
    settings, _ = running
    client = redis_client.Redis.from_url(services.redis(settings).address)
    client.set("ecap:test", "7")
    assert client.get("ecap:test") == b"7"


def test_up_twice_starts_nothing_twice(running: tuple[Settings, dict]) -> None:
    settings, started = running
    said: list[str] = []
    again = stack.up(settings, lambda name, what: said.append(what))
    assert {n: e["pid"] for n, e in again.items()} == {n: e["pid"] for n, e in started.items()}
    assert all(what.startswith("already running") for what in said)


def test_taken_port_is_named_in_the_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = _settings(tmp_path, port)
        with pytest.raises(StartError, match=f"port {port} on 127.0.0.1 is taken"):
            stack.up(settings, lambda name, what: None)


def test_external_address_is_not_started(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        kafka_bootstrap="127.0.0.1:1",
        postgres_dsn="postgresql://nobody@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
    )
    said: dict[str, str] = {}
    assert stack.up(settings, lambda name, what: said.__setitem__(name, what)) == {}
    assert said["kafka"] == "external at 127.0.0.1:1, not started"


def test_missing_stack_gives_advice(tmp_path: Path) -> None:
    with pytest.raises(services.ServiceUnavailable, match="start it with 'ecap up'"):
        services.kafka(_settings(tmp_path, 9))


def test_cli_up_status_down(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ECAP_KAFKA_BOOTSTRAP", "ECAP_POSTGRES_DSN", "ECAP_REDIS_URL")
    }
    env |= {"ECAP_HOME": str(tmp_path), "ECAP_EMBEDDED_KAFKA_PORT": str(free_port())}

    def ecap(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ecap.cli", *args], env=env, capture_output=True, text=True
        )

    try:
        assert ecap("up").returncode == 0
        assert ecap("status").returncode == 0
    finally:
        assert ecap("down").returncode == 0
    after = ecap("status")
    assert after.returncode == 1
    assert after.stdout.count("stopped") == 3
