"""Sessions follow the funnel; checkouts and transactions point at each other."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from ecap.events import TransactionType, UserEventType

FUNNEL = ("add_to_cart", "begin_checkout", "add_payment_info", "complete_checkout")


def _sessions(run) -> dict[str, list[dict]]:
    sessions: dict[str, list[dict]] = defaultdict(list)
    for event in run.user_events:
        sessions[event["session_id"]].append(event)
    return sessions


def test_funnel_steps_come_in_order_in_every_session_seen_from_its_start(fraud_run) -> None:
    checked = 0
    for events in _sessions(fraud_run).values():
        kinds = [e["event_type"] for e in events]
        if kinds[0] != "session_start":
            continue  # already going when the run began: its first steps were not sent
        reached = [step for step in FUNNEL if step in kinds]
        assert reached == list(FUNNEL[: len(reached)]), kinds
        firsts = [kinds.index(step) for step in reached]
        assert firsts == sorted(firsts), kinds
        checked += "complete_checkout" in kinds
    assert checked > 500


def test_session_events_are_in_time_order_from_one_device_and_place(fraud_run) -> None:
    for events in _sessions(fraud_run).values():
        # parsed: a time on a whole second is written without a fraction ("17Z" > "17.6Z")
        times = [datetime.fromisoformat(e["event_time"]) for e in events]
        assert times == sorted(times)
        assert len({e["device_id"] for e in events}) == 1
        assert len({e["location"]["city"] for e in events}) == 1


def test_complete_checkout_carries_the_id_of_its_transaction(fraud_run) -> None:
    purchases = {
        tx["transaction_id"]: tx for tx in fraud_run.transactions if tx["type"] == "purchase"
    }
    checkouts = [e for e in fraud_run.user_events if e["event_type"] == "complete_checkout"]
    assert sorted(e["transaction_id"] for e in checkouts) == sorted(purchases)
    for event in checkouts:
        tx = purchases[event["transaction_id"]]
        assert tx["session_id"] == event["session_id"]
        assert tx["user_id"] == event["user_id"]
        assert tx["event_time"] == event["event_time"]
        assert tx["amount"] == event["cart_value"]


def test_all_fourteen_event_types_occur(fraud_run) -> None:
    seen = {e["event_type"] for e in fraud_run.user_events}
    assert seen == {kind.value for kind in UserEventType}


def test_some_sessions_drop_off_at_each_funnel_step(fraud_run) -> None:
    reached = defaultdict(int)
    for events in _sessions(fraud_run).values():
        for step in FUNNEL:
            reached[step] += any(e["event_type"] == step for e in events)
    counts = [reached[step] for step in FUNNEL]
    assert counts == sorted(counts, reverse=True)
    assert len(set(counts)) == len(counts)


def test_refunds_come_later_and_name_an_earlier_purchase_of_the_same_customer(long_run) -> None:
    purchases = {
        tx["transaction_id"]: tx for tx in long_run.transactions if tx["type"] == "purchase"
    }
    refunds = [tx for tx in long_run.transactions if tx["type"] == TransactionType.REFUND]
    assert refunds
    for refund in refunds:
        original = purchases[refund["original_transaction_id"]]
        assert original["user_id"] == refund["user_id"]
        assert original["event_time"] < refund["event_time"]
        assert refund["amount"] <= original["amount"]
        assert refund["payment_instrument_id"] == original["payment_instrument_id"]
        assert "session_id" not in refund


def test_prospects_sign_up_and_get_a_profile_right_then(fraud_run) -> None:
    signups = [e for e in fraud_run.user_events if e["event_type"] == "signup"]
    profiles = {c["customer_id"]: c for c in fraud_run.payloads["customers"]}
    assert signups
    for event in signups:
        profile = profiles[event["user_id"]]
        assert profile["signup_time"] == event["event_time"]
        assert profile["segment"] == "new"
