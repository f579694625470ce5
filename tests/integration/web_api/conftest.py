"""The REST API on real services: a migrated scratch database, Redis, the session's broker.

``api`` is the app of ``web.api.app.create_app`` in a ``TestClient`` (its lifespan runs:
the asyncpg pool, Redis), with one user per role; ``cases`` empties the case tables and
opens cases from alerts, as the alerts worker does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ecap.credentials import Role, hash_password
from ecap.db import users
from ecap.db.cases import insert_alerts
from ecap.events import FraudAlert
from ecap.generator import history
from ecap.kafka import admin
from ecap.settings import Settings
from spark_jobs.cli import app as spark_app
from spark_jobs.lake import Lake
from web.api.app import create_app

PASSWORD = "correct horse battery"
USERS = {
    "ana": Role.ANALYST,
    "ivy": Role.INVESTIGATOR,
    "ian": Role.INVESTIGATOR,
    "ada": Role.ADMIN,
}
ROLE_USER = {Role.ANALYST: "ana", Role.INVESTIGATOR: "ivy", Role.ADMIN: "ada"}


async def sql(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@dataclass
class Api:
    client: TestClient
    dsn: str
    settings: Settings
    _tokens: dict[str, str] = field(default_factory=dict)

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def as_user(self, username: str) -> dict[str, str]:
        """Headers with a (cached) access token of ``username``."""
        if username not in self._tokens:
            self._tokens[username] = self.login(username)["access_token"]
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    def as_role(self, role: Role) -> dict[str, str]:
        return self.as_user(ROLE_USER[role])

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return asyncio.run(sql(self.dsn, query, *args))


def add_users(database: str) -> None:
    """The users of :data:`USERS`, with :data:`PASSWORD`."""

    async def work() -> None:
        conn = await asyncpg.connect(database)
        try:
            for name, role in USERS.items():
                await users.add_user(conn, name, role, hash_password(PASSWORD), actor="test")
        finally:
            await conn.close()

    asyncio.run(work())


@contextmanager
def serve(
    database: str, redis_url: str, kafka_bootstrap: str, home: Path, **settings: Any
) -> Iterator[Api]:
    """The app on these services (its lifespan runs), ``settings`` overriding the rest;
    ``gold_poll_seconds`` is passed to ``create_app``."""
    poll = settings.pop("gold_poll_seconds", 5.0)
    chosen = Settings(
        home=home,
        postgres_dsn=database,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        api_jwt_secret="a-test-signing-key-of-more-than-32-characters",  # type: ignore[arg-type]
        # The other behaviours' tests make hundreds of calls a minute per user;
        # test_rate_limits.py tests the limits.
        **{"api_rate_limits": {role.value: "100000/minute" for role in Role}, **settings},
    )
    with TestClient(create_app(chosen, gold_poll_seconds=poll)) as client:
        yield Api(client, database, chosen)


@pytest.fixture(scope="module")
def api(
    database: str, redis_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    admin.create_topics(admin.admin_client(kafka_bootstrap), replication=1)
    add_users(database)
    with serve(database, redis_url, kafka_bootstrap, tmp_path_factory.mktemp("api-home")) as api:
        yield api


def alert(n: int, priority: str = "HIGH") -> FraudAlert:
    now = datetime.now(UTC)
    return FraudAlert.model_validate(
        {
            "alert_id": f"a-{n}",
            "transaction_id": f"t-{n}",
            "user_id": f"u-{n}",
            "merchant_id": "m-1",
            "amount": 120.5,
            "currency": "EUR",
            "score": 0.9,
            "priority": priority,
            "reasons": [{"code": "amount_spike", "description": "big", "contribution": 0.6}],
            "ruleset_version": 1,
            "model_version": "m-1",
            "event_time": now,
            "detection_time": now,
        }
    )


@dataclass
class Cases:
    dsn: str

    def open(
        self, *alerts: FraudAlert, created_ago: dict[int, timedelta] | None = None
    ) -> list[int]:
        """Open a case per alert, in order; return their ids. ``created_ago`` backdates
        the cases of some alerts (by index)."""

        async def work() -> list[int]:
            conn = await asyncpg.connect(self.dsn)
            try:
                await insert_alerts(conn, [(a, b'{"amount_z": 3.5}') for a in alerts])
                rows = await conn.fetch(
                    "SELECT case_id, transaction_id FROM fraud_cases "
                    "WHERE transaction_id = ANY($1::text[])",
                    [a.transaction_id for a in alerts],
                )
                ids = {row["transaction_id"]: row["case_id"] for row in rows}
                for index, ago in (created_ago or {}).items():
                    await conn.execute(
                        "UPDATE fraud_cases SET created_at = now() - $2::interval "
                        "WHERE case_id = $1",
                        ids[alerts[index].transaction_id],
                        ago,
                    )
                return [ids[a.transaction_id] for a in alerts]
            finally:
                await conn.close()

        return asyncio.run(work())


@pytest.fixture
def cases(api: Api) -> Cases:
    """No cases and no audit trail yet (emptied); open cases with ``cases.open(alert(1))``."""
    api.sql(
        "TRUNCATE fraud_case_notes, fraud_case_history, fraud_verdicts, fraud_cases, audit_log "
        "RESTART IDENTITY"
    )
    return Cases(api.dsn)


# --- a small lake written by the real Spark chain ---

END = datetime(2026, 11, 27, 8, tzinfo=UTC)
WEEKLY_START = datetime(2026, 6, 1, 10, tzinfo=UTC)


def _hand_made(schema: pa.Schema) -> pa.Table:
    """ "h-weekly" buys 40 EUR of books costing 25 every week from June 1 (26 orders);
    "h-once" bought 500 EUR of toys costing 100 once, on November 20."""
    rows: list[dict[str, Any]] = [
        {
            "order_id": f"hw-{k}",
            "customer_id": "h-weekly",
            "order_time": WEEKLY_START + timedelta(days=7 * k),
            "amount": 40.0,
            "currency": "EUR",
            "type": "purchase",
            "category": "books",
            "region": "EMEA",
            "cost": 25.0,
        }
        for k in range(26)
    ]
    rows.append(
        {
            "order_id": "ho-1",
            "customer_id": "h-once",
            "order_time": datetime(2026, 11, 20, 10, tzinfo=UTC),
            "amount": 500.0,
            "currency": "EUR",
            "type": "purchase",
            "category": "toys",
            "region": "NA",
            "cost": 100.0,
        }
    )
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.fixture(scope="session")
def gold_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake written by ``all --orders`` on 300 generated customers over two years (seed
    11) and the two of :func:`_hand_made`; read it, never write it (copy it first)."""
    folder = tmp_path_factory.mktemp("gold")
    generated = history.to_table(
        history.generate(history.HistoryConfig(300, 730, seed=11, end=END))
    )
    generated = generated.append_column("cost", pa.nulls(len(generated), pa.float64()))
    path = folder / "orders.parquet"
    pq.write_table(pa.concat_tables([generated, _hand_made(generated.schema)]), path)
    lake = Lake.at(folder / "lake")
    result = CliRunner().invoke(spark_app, ["all", "--orders", str(path), "--lake", lake.root])
    assert result.exit_code == 0, result.output
    return lake


@pytest.fixture(scope="module")
def gold_api(
    database: str,
    redis_url: str,
    kafka_bootstrap: str,
    gold_lake: Lake,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    """The app with data loaded: the lake the real jobs wrote (:func:`gold_lake`), the
    users of :data:`USERS`, the catalog topics; a module takes it as its ``api``."""
    admin.create_topics(admin.admin_client(kafka_bootstrap), replication=1)
    add_users(database)
    home = tmp_path_factory.mktemp("api-home")
    with serve(database, redis_url, kafka_bootstrap, home, lake_uri=gold_lake.root) as served:
        yield served
