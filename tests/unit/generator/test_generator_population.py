"""The population is stable and a customer's events stay consistent with it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from ecap import topics
from ecap.events import CustomerSegment
from ecap.generator import population
from ecap.generator.geography import CITIES
from ecap.generator.population import CATEGORIES, SEGMENTS

END = datetime(2026, 11, 27, 8, tzinfo=UTC)


def test_customers_own_one_to_three_devices_and_instruments() -> None:
    people = population.build(2000, 1, END)
    assert set(people.device_count.tolist()) == {1, 2, 3}
    assert set(people.instrument_count.tolist()) == {1, 2, 3}


def test_every_segment_is_present_with_power_users_a_minority() -> None:
    people = population.build(5000, 1, END)
    counts = Counter(SEGMENTS[s] for s in people.segment.tolist())
    assert set(counts) == set(CustomerSegment)
    assert counts[CustomerSegment.POWER_USER] < 0.15 * 5000


def test_power_users_buy_more_often_than_the_rest() -> None:
    people = population.build(5000, 1, END)
    power = people.segment == SEGMENTS.index(CustomerSegment.POWER_USER)
    assert people.purchase_rate[power].min() > people.purchase_rate[~power].mean()


def test_customers_live_in_all_four_regions() -> None:
    people = population.build(2000, 1, END)
    assert {CITIES[c].region for c in people.city.tolist()} == {"NA", "EMEA", "APAC", "LATAM"}


def test_products_cover_every_category_and_cost_less_than_their_price() -> None:
    catalogue = population.build(400, 1, END).catalogue
    assert set(catalogue.category.tolist()) == set(range(len(CATEGORIES)))
    assert (catalogue.cost_usd > 0).all()
    assert (catalogue.cost_usd < catalogue.price_usd).all()


def test_signups_fall_inside_the_acquisition_window() -> None:
    people = population.build(5000, 1, END, acquisition_days=365)
    end_ms = int(END.timestamp() * 1000)
    assert people.signup_ms.min() >= end_ms - 365 * population.DAY_MS
    assert people.signup_ms.max() < end_ms


def test_legitimate_transactions_use_the_customers_own_devices_instruments_and_home(
    fraud_run,
) -> None:
    world = fraud_run.stream.world
    labels = fraud_run.labels
    checked = 0
    for tx in fraud_run.transactions:
        if tx["transaction_id"] in labels:
            continue
        who = fraud_run.customer_index(tx["user_id"])
        assert tx["device_id"] in world.devices[who]
        assert tx["payment_instrument_id"] in {i for _, i in world.instruments[who]}
        assert tx["location"]["city"] == CITIES[world.city[who]].name
        assert tx["ip_address"].split(".")[:2] == world.ips[who].split(".")[:2]  # home city
        assert tx["currency"] == CITIES[world.city[who]].currency
        checked += 1
    assert checked > 1000


def test_sessions_of_customers_come_from_their_devices_at_home(fraud_run) -> None:
    world = fraud_run.stream.world
    fraud_sessions = {
        tx["session_id"]
        for tx in fraud_run.transactions
        if tx["transaction_id"] in fraud_run.labels
    }
    for event in fraud_run.user_events:
        if "user_id" not in event or event["session_id"] in fraud_sessions:
            continue
        who = fraud_run.customer_index(event["user_id"])
        assert event["device_id"] in world.devices[who]
        assert event["location"]["city"] == CITIES[world.city[who]].name


def test_the_run_opens_with_the_catalogue_then_the_profiles(fraud_run) -> None:
    config = fraud_run.stream.config
    opening = [r.topic for r in fraud_run.records[: config.catalogue_records]]
    assert (
        opening
        == [topics.PRODUCT_UPDATES] * config.products + [topics.CUSTOMERS] * config.population
    )
