"""The analytics routes over a lake written by the real Spark chain (``all --orders`` on a
small generated history plus two hand-made customers): each figure against a value worked
out by hand or read from the Delta table here with deltalake's own engine (DataFusion)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder

from ecap.credentials import Role
from ecap.db.cases import insert_alerts
from spark_jobs import lake as tables
from spark_jobs.lake import Lake

from .conftest import Api, alert


@pytest.fixture(scope="module")
def api(gold_api: Api) -> Api:
    """The app over the gold lake (conftest's ``gold_api``)."""
    return gold_api


def sql(lake: Lake, query: str, *names: str) -> list[dict[str, Any]]:
    """``query`` over gold tables ``names``, by deltalake's own engine."""
    builder = QueryBuilder()
    for name in names:
        builder.register(name, DeltaTable(lake.gold(name)))
    rows: list[dict[str, Any]] = pa.table(builder.execute(query).read_all()).to_pylist()
    return rows


def get(api: Api, path: str, **params: Any) -> Any:
    response = api.client.get(f"/api/v1{path}", params=params, headers=api.as_role(Role.ANALYST))
    assert response.status_code == 200, response.text
    return response.json()


# --- customers ---


def test_a_profile_shows_the_hand_made_customers_rfm_and_clv(api: Api) -> None:
    body = get(api, "/customers/h-weekly")
    rfm, clv = body["rfm"], body["clv"]
    assert (rfm["frequency"], rfm["monetary_eur"], rfm["recency_days"]) == (26, 1040.0, 4)
    assert (clv["orders"], clv["revenue_eur"], clv["margin_eur"]) == (26, 1040.0, 390.0)


def test_a_profile_has_the_churn_score_the_table_holds(api: Api, gold_lake: Lake) -> None:
    [row] = sql(
        gold_lake,
        "SELECT churn_probability, model_version FROM churn_scores WHERE customer_id = 'h-weekly'",
        tables.CHURN_SCORES,
    )
    churn = get(api, "/customers/h-weekly")["churn"]
    assert (churn["churn_probability"], churn["model_version"]) == (
        row["churn_probability"],
        row["model_version"],
    )


def test_a_profile_lists_the_customers_alerts_and_cases_from_postgres(api: Api) -> None:
    mine = alert(9001).model_copy(update={"user_id": "h-once"})
    others = alert(9002)

    async def open_cases() -> None:
        conn = await asyncpg.connect(api.dsn)
        try:
            await insert_alerts(conn, [(mine, None), (others, None)])
        finally:
            await conn.close()

    asyncio.run(open_cases())
    cases = get(api, "/customers/h-once")["cases"]
    assert [(c["alert_id"], c["status"], c["reason_codes"]) for c in cases] == [
        ("a-9001", "new", ["amount_spike"])
    ]


def test_an_unknown_customer_is_404(api: Api) -> None:
    response = api.client.get("/api/v1/customers/nobody", headers=api.as_role(Role.ANALYST))
    assert (response.status_code, "nobody" in response.json()["detail"]) == (404, True)


def test_the_list_filters_by_segment_and_clv_range(api: Api, gold_lake: Lake) -> None:
    expected = sql(
        gold_lake,
        "SELECT r.customer_id FROM rfm r JOIN clv c ON r.customer_id = c.customer_id "
        "WHERE r.segment IN ('Champions', 'Lost') AND c.clv_eur BETWEEN 5 AND 400 "
        "ORDER BY c.clv_eur DESC, r.customer_id DESC",
        tables.RFM,
        tables.CLV,
    )
    body = get(api, "/customers", segment=["Champions", "Lost"], min_clv=5, max_clv=400, limit=1000)
    assert [item["customer_id"] for item in body["items"]] == [
        row["customer_id"] for row in expected
    ]
    assert body["total"] == len(expected) > 0


def test_the_list_filters_by_cohort_month(api: Api) -> None:
    body = get(api, "/customers", cohort="2026-06", limit=1000)
    assert "h-weekly" in {item["customer_id"] for item in body["items"]}
    assert {item["cohort"] for item in body["items"]} == {"2026-06"}


def test_keyset_pages_cover_the_list_once_in_order(api: Api, gold_lake: Lake) -> None:
    expected = sql(
        gold_lake,
        "SELECT customer_id FROM churn_scores ORDER BY churn_probability, customer_id",
        tables.CHURN_SCORES,
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "churn_probability", "order": "asc", "limit": 37}
        if cursor:
            params["cursor"] = cursor
        body = get(api, "/customers", min_churn_probability=0, **params)
        seen += [item["customer_id"] for item in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == [row["customer_id"] for row in expected]


def test_offset_blocks_are_the_same_rows_as_the_cursor_pages(api: Api) -> None:
    first = get(api, "/customers", limit=20)
    second = get(api, "/customers", limit=20, cursor=first["next"])
    block = get(api, "/customers", limit=20, offset=20)
    assert (block["items"], block["next"]) == (second["items"], None)


def test_customers_without_a_figure_sort_last_and_are_paged_through(api: Api) -> None:
    body = get(api, "/customers", sort="churn_probability", limit=1000)
    probabilities = [item["churn_probability"] for item in body["items"]]
    scored = [p for p in probabilities if p is not None]
    assert probabilities == sorted(scored, reverse=True) + [None] * (
        len(probabilities) - len(scored)
    )


def test_keyset_pages_run_through_customers_without_a_figure(api: Api) -> None:
    whole = get(api, "/customers", sort="churn_probability", limit=1000)["items"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "churn_probability", "limit": 41}
        body = get(api, "/customers", **params, **({"cursor": cursor} if cursor else {}))
        seen += [item["customer_id"] for item in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == [item["customer_id"] for item in whole]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"segment": "Platinum"}, "query.segment"),
        ({"offset": 100_001}, "query.offset"),
        ({"limit": 1001}, "query.limit"),
        ({"min_clv": 10, "max_clv": 1}, "query.min_clv"),
        ({"cohort": "2026-13"}, "query.cohort"),
        ({"sort": "name"}, "query.sort"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "query.cursor"),
        ({"cursor": "e30", "offset": 5}, "query.offset"),
    ],
)
def test_a_bad_filter_is_422_naming_the_field(api: Api, params: dict[str, Any], field: str) -> None:
    response = api.client.get("/api/v1/customers", params=params, headers=api.as_role(Role.ANALYST))
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]


# --- segments, CLV, churn, cohorts, revenue ---


def test_segments_count_customers_and_revenue_as_gold_rfm_holds(api: Api, gold_lake: Lake) -> None:
    expected = {
        row["segment"]: (row["n"], pytest.approx(row["revenue"]))
        for row in sql(
            gold_lake,
            "SELECT segment, count(*) AS n, sum(monetary_eur) AS revenue FROM rfm GROUP BY segment",
            tables.RFM,
        )
    }
    body = get(api, "/segments")
    got = {
        s["segment"]: (s["customers"], s["revenue_eur"]) for s in body["items"] if s["customers"]
    }
    assert got == expected
    assert len(body["items"]) == 11


def test_the_clv_histogram_holds_every_customer_and_all_the_value(
    api: Api, gold_lake: Lake
) -> None:
    [row] = sql(
        gold_lake,
        "SELECT count(*) AS n, sum(clv_eur) AS total, min(clv_eur) AS low, max(clv_eur) AS high "
        "FROM clv WHERE clv_eur IS NOT NULL",
        tables.CLV,
    )
    body = get(api, "/clv/distribution", buckets=7)
    buckets = body["buckets"]
    assert len(buckets) == 7
    assert sum(b["customers"] for b in buckets) == body["customers"] == row["n"]
    assert sum(b["clv_eur"] for b in buckets) == pytest.approx(row["total"])
    assert (buckets[0]["low_eur"], buckets[-1]["high_eur"]) == (row["low"], row["high"])


def test_the_top_customers_by_clv_are_the_tables_highest(api: Api, gold_lake: Lake) -> None:
    expected = sql(
        gold_lake,
        "SELECT customer_id, clv_eur FROM clv ORDER BY clv_eur DESC, customer_id DESC LIMIT 5",
        tables.CLV,
    )
    items = get(api, "/clv/top", limit=5)["items"]
    assert [(i["customer_id"], i["clv_eur"]) for i in items] == [
        (r["customer_id"], r["clv_eur"]) for r in expected
    ]


def test_the_at_risk_list_holds_the_customers_above_the_threshold(
    api: Api, gold_lake: Lake
) -> None:
    [row] = sql(
        gold_lake,
        "SELECT count(*) AS n FROM churn_scores WHERE churn_probability >= 0.8",
        tables.CHURN_SCORES,
    )
    body = get(api, "/churn/at-risk", min_probability=0.8, limit=1000)
    assert body["total"] == len(body["items"]) == row["n"]
    assert min(i["churn_probability"] for i in body["items"]) >= 0.8


def test_the_churn_model_is_the_one_that_scored_with_its_saved_metrics(
    api: Api, gold_lake: Lake
) -> None:
    [row] = sql(
        gold_lake,
        "SELECT min(model_version) AS v, count(*) AS n FROM churn_scores",
        tables.CHURN_SCORES,
    )
    saved = json.loads((Path(gold_lake.models("churn")) / row["v"] / "metrics.json").read_text())
    body = get(api, "/churn/model")
    assert (body["version"], body["metrics"], body["scored_customers"]) == (
        row["v"],
        saved["metrics"],
        row["n"],
    )


def test_the_cohort_matrices_are_the_tables_cells(api: Api, gold_lake: Lake) -> None:
    rows = sql(
        gold_lake,
        "SELECT months_since_acquisition AS m, retention_rate, revenue_eur "
        "FROM cohort_retention WHERE cohort_month = DATE '2026-06-01' ORDER BY m",
        tables.COHORT_RETENTION,
    )
    [june] = get(api, "/cohorts", **{"from": "2026-06", "to": "2026-06"})["items"]
    assert (june["retention_rate"], june["revenue_eur"]) == (
        [r["retention_rate"] for r in rows],
        [r["revenue_eur"] for r in rows],
    )


def test_monthly_revenue_by_category_sums_the_days(api: Api, gold_lake: Lake) -> None:
    [row] = sql(
        gold_lake,
        "SELECT sum(revenue_eur) AS revenue, sum(orders) AS orders FROM daily_revenue "
        "WHERE category = 'toys' AND order_date >= DATE '2026-11-01'",
        tables.DAILY_REVENUE,
    )
    [november] = get(
        api,
        "/revenue",
        granularity="month",
        by="category",
        category="toys",
        **{"from": "2026-11-01"},
    )["items"]
    assert (november["period"], november["orders"]) == ("2026-11-01", row["orders"])
    assert november["revenue_eur"] == pytest.approx(row["revenue"])
