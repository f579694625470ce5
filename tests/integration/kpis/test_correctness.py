"""The workers' KPIs equal the offline computation of the same fixed-seed stream.

Revenue is compared in cents, every count exactly, for every final tumbling minute
published to ``analytics-results``, every closed sliding five minutes, and the views.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import pytest

from ecap import auth
from ecap.topics import TRANSACTIONS, USER_EVENTS

from .deployment import Deployment
from .expected import MINUTE, STEPS, Expected

SALES_DIMENSIONS = ("all", "category", "region", "payment_method")


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def finals(single: Deployment, expected: Expected) -> dict[tuple[int, str, str, str, str], float]:
    """Final results by (window start ms, window kind, metric, dimension, value)."""
    wanted = {("tumbling_1m", m, "orders") for m in expected.minutes(TRANSACTIONS)}
    wanted |= {("tumbling_1m", m, "events") for m in expected.minutes(USER_EVENTS)}
    results = single.wait_for_finals(wanted, key=ms)
    return {
        (ms(r["window_start"]), r["window"], r["metric"], r["dimension"], r["dimension_value"]): r[
            "value"
        ]
        for r in results.values()
    }


def by_kind(finals: dict[tuple[int, str, str, str, str], float], kind: str) -> dict[Any, float]:
    return {(k[0], k[2], k[3], k[4]): v for k, v in finals.items() if k[1] == kind}


def test_sales_of_every_minute_equal_offline_to_the_cent(
    finals: dict[tuple[int, str, str, str, str], float], expected: Expected
) -> None:
    published = by_kind(finals, "tumbling_1m")
    want: dict[Any, float] = {}
    for (minute, dim, value), s in expected.sales.items():
        if s.orders:
            want[(minute, "revenue", dim, value)] = s.revenue
            want[(minute, "orders", dim, value)] = s.orders
            want[(minute, "units", dim, value)] = s.units
            want[(minute, "unique_customers", dim, value)] = len(s.customers)
        if s.refunds:
            want[(minute, "refunds", dim, value)] = s.refunds
            want[(minute, "refund_amount", dim, value)] = s.refund_amount
    got = {}
    for key, number in published.items():
        if key[1] in ("revenue", "refund_amount") and number:
            got[key] = round(number * 100)
        elif key[1] in ("orders", "units", "unique_customers", "refunds") and number:
            got[key] = int(number)
    assert got == want
    assert sum(1 for key in want if key[1] == "revenue" and key[2] == "all") == len(
        {k[0] for k in expected.sales}
    )


def test_average_order_value_of_every_minute_is_revenue_over_orders(
    finals: dict[tuple[int, str, str, str, str], float], expected: Expected
) -> None:
    published = by_kind(finals, "tumbling_1m")
    for (minute, dim, value), s in expected.sales.items():
        if s.orders:
            assert published[(minute, "aov", dim, value)] == round(s.revenue / s.orders / 100, 2)


def test_events_sessions_and_funnel_of_every_minute_equal_offline(
    finals: dict[tuple[int, str, str, str, str], float], expected: Expected
) -> None:
    published = by_kind(finals, "tumbling_1m")
    got = {
        (k[0], k[1], k[3]): int(v)
        for k, v in published.items()
        if k[1] in ("events", "sessions_started", "funnel_sessions")
    }
    assert got == dict(expected.clicks)


def test_active_users_and_sessions_of_every_minute_equal_offline(
    finals: dict[tuple[int, str, str, str, str], float], expected: Expected
) -> None:
    published = by_kind(finals, "tumbling_1m")
    for minute in expected.minutes(USER_EVENTS):
        sessions, users = expected.distinct_between(minute, minute + MINUTE)
        assert published[(minute, "active_sessions", "all", "all")] == sessions
        assert published[(minute, "active_users", "all", "all")] == users


def test_active_users_of_every_closed_five_minutes_equal_offline(
    finals: dict[tuple[int, str, str, str, str], float], expected: Expected
) -> None:
    sliding = by_kind(finals, "sliding_5m")
    starts = {k[0] for k in sliding}
    assert starts, "no sliding window was closed"
    for start in starts:
        sessions, users = expected.distinct_between(start, start + 5 * MINUTE)
        assert sliding[(start, "active_sessions", "all", "all")] == sessions
        assert sliding[(start, "active_users", "all", "all")] == users


@pytest.mark.parametrize("dimension", SALES_DIMENSIONS)
def test_hopping_hours_in_the_timeseries_view_equal_offline(
    single: Deployment, expected: Expected, dimension: str
) -> None:
    worker = single.workers["transactions"][0]
    for metric in ("revenue", "orders", "unique_customers"):
        status, body = single.get(
            worker, f"/kpis/timeseries/?metric={metric}&window=hopping_1h&dimension={dimension}"
        )
        assert status == 200
        assert len(body["series"]) == 12  # 3 minutes lie in 12 hopping hours
        for window in body["series"]:
            want = expected.sales_between(window["start"], window["end"], dimension)
            if metric == "revenue":
                got = {v: round(n * 100) for v, n in window["values"].items() if n}
                assert got == {v: s.revenue for v, s in want.items() if s.revenue}
            elif metric == "orders":
                got = {v: n for v, n in window["values"].items() if n}
                assert got == {v: s.orders for v, s in want.items() if s.orders}
            else:
                got = {v: n for v, n in window["values"].items() if n}
                assert got == {v: len(s.customers) for v, s in want.items() if s.customers}


def test_funnel_view_since_start_equals_offline(single: Deployment, expected: Expected) -> None:
    status, body = single.get(single.workers["user-events"][0], "/funnel/?window=total")
    assert status == 200
    assert [s["step"] for s in body["steps"]] == list(STEPS)
    assert {s["step"]: s["sessions"] for s in body["steps"]} == dict(expected.funnel_total)
    carts, completed = (
        expected.funnel_total["add_to_cart"],
        expected.funnel_total["complete_checkout"],
    )
    assert body["cart_abandonment"] == pytest.approx(1 - completed / carts)


def test_current_view_shows_the_latest_minute(single: Deployment, expected: Expected) -> None:
    status, body = single.get(single.workers["transactions"][0], "/kpis/current/")
    assert status == 200
    last = max(expected.minutes(TRANSACTIONS))
    assert body["minute"]["start"] == last
    want = expected.sales[(last, "all", "all")]
    got = body["minute"]["all"]["all"]
    assert (round(got["revenue"] * 100), got["orders"]) == (want.revenue, want.orders)


@pytest.mark.parametrize("worker", ["transactions", "user-events"])
def test_metrics_view_exports_lag_latency_rates_and_dead_letters(
    single: Deployment, worker: str
) -> None:
    url = single.workers[worker][0].url + "/metrics"
    request = urllib.request.Request(url, headers=auth.header(single.settings))
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for family in (
        "ecap_consumer_lag",
        "ecap_processing_latency_seconds",
        "ecap_events_total",
        "ecap_events_per_second",
        "ecap_alerts_total",
        "ecap_dead_letters_total",
    ):
        assert f"# TYPE {family} " in text, family
    topic = "transactions" if worker == "transactions" else "user-events"
    assert f'ecap_processing_latency_seconds_count{{topic="{topic}"}}' in text


@pytest.mark.parametrize(
    ("worker", "view"), [("transactions", "/kpis/current/"), ("user-events", "/sessions/active")]
)
def test_every_view_but_health_needs_the_api_token(
    single: Deployment, worker: str, view: str
) -> None:
    process = single.workers[worker][0]
    # ours, then Faust's own: routing, tables (their content), the index
    for path in (view, "/metrics", "/router/", "/table/", "/"):
        status, body = single.get(process, path, token=False)
        assert status == 401, path
        assert "Authorization: Bearer <token>" in body["error"]
        assert str(auth.token_path(single.settings)) in body["error"]
    request = urllib.request.Request(
        process.url + view, headers={"Authorization": "Bearer not-the-token"}
    )
    with pytest.raises(urllib.error.HTTPError) as wrong:
        urllib.request.urlopen(request, timeout=10)
    assert wrong.value.code == 401
    wrong.value.close()
    assert single.get(process, view)[0] == 200
    assert single.get(process, "/router/")[0] == 200
    assert single.get(process, "/health", token=False)[0] == 200
