"""Live KPIs: records produced on the session's embedded broker to ``analytics-results``,
read by the API process's consumer and served with their freshness."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from ecap import topics
from ecap.credentials import Role
from ecap.events import AnalyticsResult, WindowKind, encode

from .conftest import Api

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
MINUTE = timedelta(minutes=1)
COMPUTED = NOW - timedelta(seconds=30)
FUNNEL = {
    "page_view": 100,
    "product_view": 80,
    "add_to_cart": 40,
    "begin_checkout": 20,
    "complete_checkout": 10,
}


def result(
    metric: str,
    value: float,
    start: datetime,
    *,
    window: WindowKind = WindowKind.TUMBLING_1M,
    dimension: str = "all",
    dimension_value: str = "all",
    final: bool = True,
) -> AnalyticsResult:
    length = MINUTE if window == WindowKind.TUMBLING_1M else timedelta(hours=1)
    return AnalyticsResult(
        metric=metric,
        window=window,
        window_start=start,
        window_end=start + length,
        dimension=dimension,
        dimension_value=dimension_value,
        value=value,
        final=final,
        computed_at=COMPUTED,
    )


def get(api: Api, path: str, **params: Any) -> Any:
    response = api.client.get(f"/api/v1{path}", params=params, headers=api.as_role(Role.ANALYST))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def published(api: Api) -> Api:
    """Two minutes of revenue (the second published twice: open, then updated), books
    revenue in the second, and an hour's funnel; waits until the API has read them."""
    first, second = NOW - 2 * MINUTE, NOW - MINUTE
    records = [
        result("revenue", 100.0, first),
        result("revenue", 150.0, second, final=False),
        result("revenue", 60.0, second, dimension="category", dimension_value="books"),
        *(
            result(
                "funnel_sessions",
                n,
                NOW - timedelta(hours=1),
                window=WindowKind.HOPPING_1H,
                dimension="step",
                dimension_value=step,
            )
            for step, n in FUNNEL.items()
        ),
        result("revenue", 175.0, second, final=False),
    ]
    producer = Producer({"bootstrap.servers": api.settings.kafka_bootstrap})
    for record in records:
        producer.produce(topics.ANALYTICS_RESULTS, key=record.metric.encode(), value=encode(record))
    assert producer.flush(10) == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        points = get(api, "/kpis/timeseries", metric="revenue")["points"]
        funnel = get(api, "/kpis/funnel")["steps"]
        if [p["value"] for p in points] == [100.0, 175.0] and funnel[0]["sessions"]:
            break
        time.sleep(0.2)
    return api


def test_the_timeseries_is_oldest_first_with_the_latest_value_of_each_window(
    published: Api,
) -> None:
    points = get(published, "/kpis/timeseries", metric="revenue")["points"]
    assert [(p["window_start"], p["value"], p["final"]) for p in points] == [
        ((NOW - 2 * MINUTE).isoformat().replace("+00:00", "Z"), 100.0, True),
        ((NOW - MINUTE).isoformat().replace("+00:00", "Z"), 175.0, False),
    ]


def test_current_is_each_metrics_latest_window_by_dimension(published: Api) -> None:
    body = get(published, "/kpis/current", dimension="category", metric="revenue")
    assert [(i["dimension_value"], i["value"]) for i in body["items"]] == [("books", 60.0)]


def test_an_answer_carries_the_age_of_its_newest_record(published: Api) -> None:
    body = get(published, "/kpis/current", metric="revenue")
    since = (datetime.now(UTC) - COMPUTED).total_seconds()  # NOW is the module's import time
    assert since - 5 <= body["freshness"]["age_seconds"] <= since
    assert body["freshness"]["newest"] == COMPUTED.isoformat().replace("+00:00", "Z")


def test_the_funnel_converts_step_to_step(published: Api) -> None:
    body = get(published, "/kpis/funnel")
    assert [(s["step"], s["sessions"], s["conversion"]) for s in body["steps"]] == [
        ("page_view", 100, None),
        ("product_view", 80, 0.8),
        ("add_to_cart", 40, 0.5),
        ("begin_checkout", 20, 0.5),
        ("complete_checkout", 10, 0.5),
    ]
    assert (body["overall_conversion"], body["cart_abandonment"]) == (0.1, 0.75)


def test_no_record_yet_gives_no_freshness(published: Api) -> None:
    body = get(published, "/kpis/timeseries", metric="never_published")
    assert (body["points"], body["freshness"]["age_seconds"]) == ([], None)


def test_health_shows_the_newest_kpi_record(published: Api) -> None:
    live = published.client.get("/api/v1/health", headers=published.as_role(Role.ANALYST)).json()[
        "live_kpis"
    ]
    assert (live["newest"], live["caught_up"]) == (
        COMPUTED.isoformat(),
        True,
    )
