"""Fraud: labels only on their own topic, and each scenario behaves as it claims."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import datetime

import pytest

from ecap.currency import FX_PER_USD
from ecap.events import FraudScenario
from ecap.generator.geography import CITIES, distance_km


def _ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp() * 1000


def _usd(tx: dict) -> float:
    return tx["amount"] / FX_PER_USD[tx["currency"]]


def _local_hour(run, tx: dict) -> float:
    city = CITIES[run.stream.world.city[run.customer_index(tx["user_id"])]]
    return (_ms(tx["event_time"]) / 3_600_000 + city.utc_offset) % 24


def _fraud_by_scenario(run) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = defaultdict(list)
    for tx in run.transactions:
        label = run.labels.get(tx["transaction_id"])
        if label is not None:
            found[label["scenario"]].append(tx)
    return found


def test_every_label_names_one_transaction_of_the_same_user_and_time(fraud_run) -> None:
    transactions = {tx["transaction_id"]: tx for tx in fraud_run.transactions}
    labels = fraud_run.payloads["fraud-labels"]
    assert len(labels) == len({label["transaction_id"] for label in labels}) > 50
    for label in labels:
        tx = transactions[label["transaction_id"]]
        assert tx["user_id"] == label["user_id"]
        assert tx["event_time"] == label["event_time"]
        assert tx["type"] == "purchase"


def test_all_six_scenarios_occur(fraud_run) -> None:
    assert set(_fraud_by_scenario(fraud_run)) == {s.value for s in FraudScenario}


def test_nothing_in_a_transaction_gives_the_label_away(fraud_run) -> None:
    markers = {label["attack_id"].encode() for label in fraud_run.labels.values()}
    markers |= {s.value.encode() for s in FraudScenario} | {b"fraud", b"atk-"}
    fraudulent = set(fraud_run.labels)
    id_shapes = Counter()
    for record in fraud_run.records:
        if record.topic != "transactions":
            continue
        assert not any(marker in record.value for marker in markers)
    for tx in fraud_run.transactions:
        shape = (len(tx["transaction_id"]), len(tx["device_id"]), len(tx["payment_instrument_id"]))
        id_shapes[shape, tx["transaction_id"] in fraudulent] += 1
    assert {shape for shape, _ in id_shapes} == {(19, 14, 15)}  # ids look alike


def test_card_testing_is_tiny_amounts_on_new_cards_from_a_new_device(fraud_run) -> None:
    world = fraud_run.stream.world
    for tx in _fraud_by_scenario(fraud_run)["card_testing"]:
        who = fraud_run.customer_index(tx["user_id"])
        assert 0.5 <= _usd(tx) < 3.0
        assert tx["payment_instrument_id"] not in {i for _, i in world.instruments[who]}
        assert tx["device_id"] not in world.devices[who]


def test_card_testing_attacks_are_bursts_seconds_apart(fraud_run) -> None:
    attacks = defaultdict(list)
    for label in fraud_run.labels.values():
        if label["scenario"] == "card_testing":
            attacks[label["attack_id"]].append(_ms(label["event_time"]))
    gaps = [b - a for times in attacks.values() for a, b in itertools.pairwise(times)]
    assert gaps
    assert max(gaps) <= 20_000


def test_account_takeover_is_a_new_device_far_from_home_spending_big(fraud_run) -> None:
    world = fraud_run.stream.world
    for tx in _fraud_by_scenario(fraud_run)["account_takeover"]:
        who = fraud_run.customer_index(tx["user_id"])
        home = CITIES[world.city[who]]
        where = tx["location"]
        assert tx["device_id"] not in world.devices[who]
        assert distance_km(home.lat, home.lon, where["lat"], where["lon"]) >= 3000
        assert where["region"] != home.region
        assert _usd(tx) >= 2.5 * world.mean_spend[who]


def test_impossible_travel_is_faster_than_1000_kmh_since_the_previous_purchase(
    fraud_run,
) -> None:
    previous: dict[str, dict] = {}
    speeds = []
    for tx in fraud_run.transactions:
        label = fraud_run.labels.get(tx["transaction_id"])
        last = previous.get(tx["user_id"])
        if label is not None and label["scenario"] == "impossible_travel" and last is not None:
            hours = (_ms(tx["event_time"]) - _ms(last["event_time"])) / 3_600_000
            a, b = last["location"], tx["location"]
            distance = distance_km(a["lat"], a["lon"], b["lat"], b["lon"])
            if distance > 0:  # the second purchase of an attack is from the same city
                speeds.append(distance / hours)
        previous[tx["user_id"]] = tx
    assert speeds
    assert min(speeds) > 1000


def test_amount_spike_is_many_times_the_usual_spend_with_own_device_and_card(
    fraud_run,
) -> None:
    world = fraud_run.stream.world
    for tx in _fraud_by_scenario(fraud_run)["amount_spike"]:
        who = fraud_run.customer_index(tx["user_id"])
        assert _usd(tx) >= 5 * world.mean_spend[who]
        assert tx["device_id"] in world.devices[who]
        assert tx["payment_instrument_id"] in {i for _, i in world.instruments[who]}
        assert tx["location"]["city"] == CITIES[world.city[who]].name


def test_odd_hours_fraud_happens_in_the_middle_of_the_local_night(fraud_run) -> None:
    for tx in _fraud_by_scenario(fraud_run)["odd_hours"]:
        assert 2.5 <= _local_hour(fraud_run, tx) < 4.5


def test_legitimate_customers_never_pay_between_two_and_five_local(default_run) -> None:
    hours = [
        _local_hour(default_run, tx)
        for tx in default_run.transactions
        if tx["transaction_id"] not in default_run.labels
    ]
    assert len(hours) > 3000
    assert not [h for h in hours if 2 <= h < 5]


def test_legitimate_customers_sometimes_use_a_new_device_network_or_card(default_run) -> None:
    """Fraud's single signals also occur in legitimate traffic (about 2%, 5% and 1%)."""
    world = default_run.stream.world
    index = {customer: i for i, customer in enumerate(world.customer_ids)}
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    firsts: Counter[str] = Counter()
    purchases = 0
    for tx in default_run.transactions:
        if tx["transaction_id"] in default_run.labels or tx["type"] != "purchase":
            continue
        purchases += 1
        customer = index[tx["user_id"]]
        mine = seen[tx["user_id"]]
        initial = {
            "device_id": set(world.devices[customer][: int(world.pop.device_count[customer])]),
            "payment_instrument_id": {
                i
                for _, i in world.instruments[customer][: int(world.pop.instrument_count[customer])]
            },
            "ip_address": {world.ips[customer]},
        }
        for field, owned in initial.items():
            if tx[field] not in owned and tx[field] not in mine[field]:
                firsts[field] += 1
            mine[field].add(tx[field])
    assert purchases > 3000
    assert 0.005 * purchases < firsts["device_id"] < 0.04 * purchases
    assert 0.02 * purchases < firsts["ip_address"] < 0.08 * purchases
    assert 0.002 * purchases < firsts["payment_instrument_id"] < 0.02 * purchases


def test_many_instruments_uses_a_different_new_instrument_each_time(fraud_run) -> None:
    world = fraud_run.stream.world
    attacks = defaultdict(list)
    for tx in _fraud_by_scenario(fraud_run)["many_instruments"]:
        attacks[fraud_run.labels[tx["transaction_id"]]["attack_id"]].append(tx)
    assert any(len(txs) >= 4 for txs in attacks.values())
    for txs in attacks.values():
        who = fraud_run.customer_index(txs[0]["user_id"])
        used = [tx["payment_instrument_id"] for tx in txs]
        assert len(set(used)) == len(used)
        assert not set(used) & {i for _, i in world.instruments[who]}


def test_fraud_is_about_the_requested_share_of_purchases(default_run) -> None:
    purchases = sum(tx["type"] == "purchase" for tx in default_run.transactions)
    assert len(default_run.labels) / purchases == pytest.approx(0.01, abs=0.004)


def test_victims_had_a_history_in_the_run_before_the_attack(fraud_run) -> None:
    seen: Counter[str] = Counter()
    for tx in fraud_run.transactions:
        label = fraud_run.labels.get(tx["transaction_id"])
        if label is None:
            seen[tx["user_id"]] += 1
        elif label["scenario"] != "odd_hours":
            assert seen[tx["user_id"]] >= 2


def test_a_simple_behavioural_detector_separates_fraud_from_legitimate_traffic(
    default_run,
) -> None:
    """The promise to the fraud detector: per-user state alone reaches P and R >= 0.9,
    although legitimate customers now and then use a new device, network or card."""
    homes = {c["customer_id"]: c["home"] for c in default_run.payloads["customers"]}
    state: dict[str, dict] = defaultdict(
        lambda: {
            "devices": set(),
            "cards": set(),
            "ips": set(),
            "n": 0,
            "mean": 0.0,
            "last": None,
        }
    )
    alerted = set()
    for tx in default_run.transactions:
        if tx["type"] != "purchase":
            continue
        user, at, where = state[tx["user_id"]], _ms(tx["event_time"]), tx["location"]
        home = homes.get(tx["user_id"], where)
        usd = _usd(tx)
        solar_hour = (at / 3_600_000 + where["lon"] / 15) % 24
        new_card = tx["payment_instrument_id"] not in user["cards"]
        stranger = (
            user["n"] >= 2
            and tx["device_id"] not in user["devices"]
            and tx["ip_address"] not in user["ips"]
        )
        at_night = 1.4 <= solar_hour < 4.75
        reasons = [
            at_night,
            user["n"] >= 1 and usd < 3 and new_card,
            user["n"] >= 2 and usd > 5 * user["mean"],
            stranger and new_card,
            stranger and distance_km(home["lat"], home["lon"], where["lat"], where["lon"]) > 1000,
        ]
        if user["last"] is not None:
            last_at, last_where = user["last"]
            km = distance_km(last_where["lat"], last_where["lon"], where["lat"], where["lon"])
            reasons.append(km > 500 and km / max((at - last_at) / 3_600_000, 1e-6) > 1000)
        if any(reasons):
            alerted.add(tx["transaction_id"])
        else:
            user["devices"].add(tx["device_id"])
            user["cards"].add(tx["payment_instrument_id"])
            user["ips"].add(tx["ip_address"])
            user["n"] += 1
            user["mean"] += (usd - user["mean"]) / user["n"]
        user["last"] = (at, where)
    fraud = set(default_run.labels)
    assert len(fraud) >= 20
    assert len(alerted & fraud) / len(alerted) >= 0.9  # precision
    assert len(alerted & fraud) / len(fraud) >= 0.9  # recall
    for scenario in FraudScenario:
        mine = {t for t, label in default_run.labels.items() if label["scenario"] == scenario}
        assert len(mine & alerted) >= 0.8 * len(mine), scenario
