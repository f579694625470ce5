"""Sessions, funnel, activity and top lists from hand-made user events."""

from __future__ import annotations

from typing import Any

from ecap.events import WindowKind
from ecap.kpis import clickstream
from ecap.kpis.ledger import Delta, Ledger
from ecap.kpis.windows import MINUTE_MS, minute_of, tumbling
from tests.unit.kpis.conftest import T0_MS, MakeEvent

WINDOW = tumbling(minute_of(T0_MS))


def fold(*events: Any, ledger: Ledger | None = None) -> Ledger:
    ledger = ledger or clickstream.new_ledger(1)
    d = Delta(0, ledger.applied.get(0, -1) + 1, ledger.applied.get(0, -1) + len(events), 0)
    for event in events:
        clickstream.add(d, ledger, event)
    ledger.apply(d)
    return ledger


def steps(ledger: Ledger) -> list[int]:
    funnel = clickstream.funnel_of(ledger.cells(WINDOW))
    return [step["sessions"] for step in funnel["steps"]]


def test_a_session_counts_at_every_step_up_to_the_deepest_it_reached(event: MakeEvent) -> None:
    ledger = fold(event("session_start", 0), event("add_to_cart", 10))
    assert steps(ledger) == [1, 1, 1, 0, 0]


def test_a_session_counts_once_per_step_however_often_it_repeats_it(event: MakeEvent) -> None:
    ledger = fold(*(event("page_view", s) for s in range(5)), event("product_view", 6))
    assert steps(ledger) == [1, 1, 0, 0, 0]


def test_conversion_and_cart_abandonment_follow_the_step_counts(event: MakeEvent) -> None:
    ledger = fold(
        event("add_to_cart", 1, session="s-1"),
        event("complete_checkout", 2, session="s-1"),
        event("add_to_cart", 3, session="s-2"),
        event("page_view", 4, session="s-3"),
        event("page_view", 5, session="s-4"),
    )
    funnel = clickstream.funnel_of(ledger.cells(WINDOW))
    assert [s["sessions"] for s in funnel["steps"]] == [4, 2, 2, 1, 1]
    assert funnel["steps"][1]["conversion"] == 0.5
    assert funnel["cart_abandonment"] == 0.5
    assert funnel["overall_conversion"] == 0.25


def test_an_event_after_the_inactivity_gap_starts_a_new_session(event: MakeEvent) -> None:
    gap_s = clickstream.SESSION_GAP_MS / 1000
    ledger = fold(event("page_view", 0), event("page_view", 1 + gap_s))
    assert ledger.totals[("sessions_started", "all", "all")] == 2
    assert ledger.sessions["s-1"][clickstream.SEQ] == 1


def test_events_within_the_gap_continue_the_session_across_batches(event: MakeEvent) -> None:
    ledger = fold(event("page_view", 0))
    fold(event("product_view", 120), ledger=ledger)
    assert ledger.totals[("sessions_started", "all", "all")] == 1
    assert ledger.totals[("funnel_sessions", "step", "product_view")] == 1


def test_active_users_are_distinct_across_sessions_and_minutes(event: MakeEvent) -> None:
    ledger = fold(
        event("page_view", 0, session="s-1", user="u-1"),
        event("page_view", 70, session="s-2", user="u-1"),
        event("page_view", 80, session="s-3", user=None),
    )
    window = clickstream.latest(ledger, WindowKind.SLIDING_5M)
    assert window is not None
    assert window.end_ms == T0_MS + 2 * MINUTE_MS
    answer = clickstream.sessions_active(ledger)
    assert (answer["active_sessions"], answer["active_users"]) == (3, 1)


def test_top_lists_rank_by_count_then_name(event: MakeEvent) -> None:
    ledger = fold(
        event("product_view", 1, product="p-b"),
        event("product_view", 2, product="p-a"),
        event("product_view", 3, product="p-c"),
        event("product_view", 4, product="p-c"),
        event("search", 5, query="  Red   Shoes "),
        event("search", 6, query="red shoes"),
    )
    cells = ledger.cells(WINDOW)
    assert clickstream.top(cells, "product_views", "product") == [
        ["p-c", 2],
        ["p-a", 1],
        ["p-b", 1],
    ]
    assert clickstream.top(cells, "searches", "search_term") == [["red shoes", 2]]
