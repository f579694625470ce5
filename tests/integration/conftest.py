"""Real services for integration tests.

A broker is always a fresh embedded Tansu on a free port (it is memory-only and starts
in milliseconds). PostgreSQL and Redis are the servers named by ``ECAP_POSTGRES_DSN`` and
``ECAP_REDIS_URL`` when set (as in CI), otherwise embedded ones under a temporary home.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ecap import workers_launcher
from ecap.db.migrate import migrate
from ecap.embedded import broker, postgres, redis
from ecap.embedded.process import free_port
from ecap.kafka import admin
from ecap.settings import Settings

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh embedded broker for the test session."""
    entry = broker.start("127.0.0.1", free_port(), tmp_path_factory.mktemp("kafka"))
    yield str(entry["address"])
    broker.stop(entry)


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("ECAP_POSTGRES_DSN")
    if configured:
        yield configured
        return
    entry = postgres.start(tmp_path_factory.mktemp("pg"))
    yield str(entry["address"])
    postgres.stop(entry)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("ECAP_REDIS_URL")
    if configured:
        yield configured
        return
    entry = redis.start(tmp_path_factory.mktemp("redis"))
    yield str(entry["address"])
    redis.stop(entry)


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def scratch_database(server_dsn: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server_dsn, name)
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def database(postgres_dsn: str) -> Iterator[str]:
    """A fresh database on the test server, migrated; dropped afterwards."""
    with scratch_database(postgres_dsn, "fraud") as dsn:
        asyncio.run(migrate(dsn))
        yield dsn


@pytest.fixture
def worker_home(kafka_bootstrap: str, database: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a home on the session's broker (the catalog's topics created) and a
    migrated database; every worker started under it is stopped afterwards."""
    settings = Settings(home=tmp_path, kafka_bootstrap=kafka_bootstrap, postgres_dsn=database)
    admin.create_topics(admin.admin_client(kafka_bootstrap), replication=1)
    yield settings
    workers_launcher.stop(settings)


def start_worker(settings: Settings, name: str) -> workers_launcher.WorkerProcess:
    """``ecap worker NAME`` in the background, on the services of ``settings``."""
    env = {
        "ECAP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "ECAP_POSTGRES_DSN": settings.postgres_dsn or "",
    }
    return workers_launcher.start(name, 0, web_port=free_port(), settings=settings, env=env)
