"""The gold snapshot: versions in the body and ``ETag``, 304 on ``If-None-Match``, a new
table version served right after it lands, ``?version=N``, and 503 on a lake without gold
tables. Each test serves its own copy of the chain's lake, so it may write new versions."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder, write_deltalake

from ecap.credentials import Role
from spark_jobs import lake as tables
from spark_jobs.lake import Lake

from .conftest import Api, add_users, serve

URL = "/api/v1/segments"
POLL = 0.2


@pytest.fixture(scope="module")
def users(database: str) -> str:
    add_users(database)
    return database


@pytest.fixture
def lake_copy(gold_lake: Lake, tmp_path: Path) -> Lake:
    shutil.copytree(gold_lake.root, tmp_path / "lake")
    return Lake.at(tmp_path / "lake")


@pytest.fixture
def api(
    users: str, redis_url: str, kafka_bootstrap: str, lake_copy: Lake, tmp_path: Path
) -> Iterator[Api]:
    with serve(
        users,
        redis_url,
        kafka_bootstrap,
        tmp_path / "home",
        lake_uri=lake_copy.root,
        gold_poll_seconds=POLL,
    ) as served:
        yield served


def _rfm_rows(lake: Lake) -> pa.Table:
    reader = (
        QueryBuilder().register("t", DeltaTable(lake.gold(tables.RFM))).execute("SELECT * FROM t")
    )
    return pa.table(reader.read_all())


def land_new_rfm_version(lake: Lake) -> int:
    """Overwrite gold/rfm with every customer moved to "Lost", as a new Delta version."""
    rows = _rfm_rows(lake)
    moved = rows.set_column(
        rows.schema.get_field_index("segment"),
        "segment",
        pa.array(["Lost"] * len(rows), pa.string()),
    )
    write_deltalake(lake.gold(tables.RFM), moved, mode="overwrite", schema_mode="overwrite")
    return DeltaTable(lake.gold(tables.RFM)).version()


def lost(body: dict[str, object]) -> int:
    items = body["items"]
    assert isinstance(items, list)
    return next(int(s["customers"]) for s in items if s["segment"] == "Lost")


def test_the_versions_read_are_in_the_body_and_the_etag(api: Api, lake_copy: Lake) -> None:
    response = api.client.get(URL, headers=api.as_role(Role.ANALYST))
    version = DeltaTable(lake_copy.gold(tables.RFM)).version()
    assert response.json()["versions"] == {"rfm": version}
    assert response.headers["etag"] == f'"gold-rfm.{version}"'


def test_if_none_match_with_the_etag_is_304_without_a_body(api: Api) -> None:
    headers = api.as_role(Role.ANALYST)
    tag = api.client.get(URL, headers=headers).headers["etag"]
    again = api.client.get(URL, headers={**headers, "If-None-Match": tag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)


def served_after(api: Api, etag: str) -> httpx.Response:
    """The first answer with another ETag than ``etag`` (the last one after 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        response = api.client.get(URL, headers=api.as_role(Role.ANALYST))
        if response.headers["etag"] != etag or time.monotonic() > deadline:
            return response
        time.sleep(POLL / 2)


def test_a_new_table_version_is_served_right_after_it_lands(api: Api, lake_copy: Lake) -> None:
    headers = api.as_role(Role.ANALYST)
    before = api.client.get(URL, headers=headers)
    customers = before.json()["customers"]
    version = land_new_rfm_version(lake_copy)
    after = served_after(api, before.headers["etag"])
    assert (after.json()["versions"], lost(after.json())) == ({"rfm": version}, customers)
    stale = api.client.get(URL, headers={**headers, "If-None-Match": before.headers["etag"]})
    assert stale.status_code == 200


def test_version_reads_an_earlier_table_version(api: Api, lake_copy: Lake) -> None:
    headers = api.as_role(Role.ANALYST)
    before = api.client.get(URL, headers=headers)
    first = before.json()
    old = first["versions"]["rfm"]
    land_new_rfm_version(lake_copy)
    assert lost(served_after(api, before.headers["etag"]).json()) != lost(first)
    travelled = api.client.get(URL, params={"version": old}, headers=headers)
    assert (travelled.json()["versions"], lost(travelled.json())) == ({"rfm": old}, lost(first))
    assert travelled.headers["etag"] == f'"gold-rfm.{old}"'


def test_a_version_the_table_never_had_is_404(api: Api) -> None:
    response = api.client.get(URL, params={"version": 99}, headers=api.as_role(Role.ANALYST))
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "query.version"


def test_health_shows_the_versions_served(api: Api, lake_copy: Lake) -> None:
    gold = api.client.get("/api/v1/health", headers=api.as_role(Role.ANALYST)).json()["gold"]
    expected = {name: DeltaTable(lake_copy.gold(name)).version() for name in tables_built()}
    assert (gold["versions"], gold["missing"]) == (expected, [])


def tables_built() -> list[str]:
    return [
        tables.RFM,
        tables.CLV,
        tables.CHURN_SCORES,
        tables.COHORT_RETENTION,
        tables.DAILY_REVENUE,
    ]


def test_a_lake_without_gold_tables_is_503_saying_run_make_spark_all(
    users: str, redis_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    with serve(
        users, redis_url, kafka_bootstrap, tmp_path / "home", lake_uri=str(tmp_path / "empty")
    ) as empty:
        response = empty.client.get(URL, headers=empty.as_role(Role.ANALYST))
    assert response.status_code == 503
    assert "make spark-all" in response.json()["hint"]
