"""Each feature on a hand-made case, with the expected value worked out by hand."""

from __future__ import annotations

import pytest

from ecap.fraud.features import compute_features
from ecap.fraud.merchant import BASELINE_RISK
from ecap.fraud.state import UserState
from tests.unit.fraud.conftest import NEW_YORK, POTSDAM, T0, MakeTx


def test_berlin_to_new_york_in_one_hour_is_6385_km_at_6385_kmh(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(0))
    features = compute_features(tx(3600, location=NEW_YORK), state)
    assert features.km_from_last == pytest.approx(6385, abs=3)
    assert features.speed_kmh == pytest.approx(6385, abs=3)


def test_speed_divides_by_at_least_a_minute(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(0))
    features = compute_features(tx(1, location=NEW_YORK), state)
    assert features.speed_kmh == pytest.approx(6385 * 60, rel=1e-3)


def test_distance_from_home_to_a_new_place(tx: MakeTx, regular: UserState) -> None:
    # Berlin (52.52, 13.405) to Potsdam (52.39, 13.06): dlat 0.13 deg, dlon 0.345 deg at
    # cos(52.455 deg) = 0.609, so 6371 km * sqrt(0.002269^2 + 0.003669^2) rad = 27.5 km
    features = compute_features(tx(0, location=POTSDAM), regular)
    assert features.km_from_home == pytest.approx(27.5, abs=0.3)


def test_a_purchase_at_home_is_zero_km_from_home(tx: MakeTx, regular: UserState) -> None:
    assert compute_features(tx(0), regular).km_from_home == 0.0


def test_cold_start_user_has_nothing_new_and_nothing_unusual(tx: MakeTx) -> None:
    features = compute_features(tx(0, amount=5000.0), UserState())
    assert (features.new_device, features.new_instrument, features.new_ip) == (0, 0, 0)
    assert (features.unknown_devices_1h, features.unknown_instruments_1h) == (0, 0)
    assert features.amount_ratio == 1.0
    assert features.amount_z == 0.0
    assert features.history == 0


def test_new_device_is_flagged_alone(tx: MakeTx, regular: UserState) -> None:
    features = compute_features(tx(0, device="d-other"), regular)
    assert (features.new_device, features.new_instrument, features.new_ip) == (1, 0, 0)


def test_new_instrument_and_new_ip_are_flagged(tx: MakeTx, regular: UserState) -> None:
    features = compute_features(tx(0, instrument="pi-new", ip="198.51.100.4"), regular)
    assert (features.new_device, features.new_instrument, features.new_ip) == (0, 1, 1)


def test_amount_ratio_to_the_user_mean(tx: MakeTx, regular: UserState) -> None:
    # the regular user's mean is (40 + 60 + 50 + 50) / 4 = 50
    assert compute_features(tx(0, amount=400.0), regular).amount_ratio == pytest.approx(8.0)


def test_amount_z_score_with_the_prior_spread(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(-600, amount=50.0))
    state.update(tx(-300, amount=50.0))
    # mean log 50, no spread of its own: variance (0 + 2 * 0.5^2) / (2 - 1 + 2) = 1/6, so
    # 100 is ln 2 / sqrt(1/6) = 0.6931 / 0.4082 = 1.698 deviations above
    assert compute_features(tx(0, amount=100.0), state).amount_z == pytest.approx(1.698, abs=1e-3)


def test_velocity_counts_and_sums_include_the_transaction(tx: MakeTx, regular: UserState) -> None:
    regular.update(tx(-900, amount=10.0))
    regular.update(tx(-30, amount=20.0))
    features = compute_features(tx(0, amount=30.0), regular)
    assert (features.tx_count_1m, features.amount_sum_1m) == (2, 50.0)
    assert (features.tx_count_10m, features.amount_sum_10m) == (2, 50.0)
    assert (features.tx_count_1h, features.amount_sum_1h) == (3, 60.0)
    # yesterday's 12:00 purchase is in the hour 24 h ago, outside the 24-hour buckets
    assert (features.tx_count_24h, features.amount_sum_24h) == (3, 60.0)


def test_distinct_and_unknown_instruments_of_the_last_hour(tx: MakeTx, regular: UserState) -> None:
    regular.update(tx(-300, instrument="pi-x"), trusted=False)
    regular.update(tx(-200, instrument="pi-y"), trusted=False)
    regular.update(tx(-100))
    features = compute_features(tx(0, instrument="pi-z"), regular)
    assert features.distinct_instruments_1h == 4  # pi-x, pi-y, pi-home, pi-z
    assert features.unknown_instruments_1h == 3  # all but pi-home
    assert features.distinct_devices_1h == 1
    assert features.unknown_devices_1h == 0


def test_small_amount_burst_counts_the_last_ten_minutes(tx: MakeTx, regular: UserState) -> None:
    # small is at most a quarter of the mean of 50: 12.50
    regular.update(tx(-900, amount=1.0), trusted=False)
    regular.update(tx(-300, amount=1.0), trusted=False)
    regular.update(tx(-60, amount=30.0), trusted=False)
    regular.update(tx(-30, amount=2.5), trusted=False)
    assert compute_features(tx(0, amount=2.0), regular).small_amount_count_10m == 3


def test_local_hour_from_longitude(tx: MakeTx) -> None:
    # 12:00 UTC; Berlin 13.405 / 15 = +0.894 h, New York -74.006 / 15 = -4.934 h
    assert compute_features(tx(0), UserState()).local_hour == pytest.approx(12.894, abs=1e-3)
    assert compute_features(tx(0, location=NEW_YORK), UserState()).local_hour == pytest.approx(
        7.066, abs=1e-3
    )


def test_hour_rarity_against_the_users_hours(tx: MakeTx, regular: UserState) -> None:
    # four purchases in UTC hour 12; the prior's 2 pseudo-purchases put 2/24 of their mass
    # under the kernel (1 for the hour, 1/2 for each neighbour)
    usual = compute_features(tx(0), regular)
    next_hour = compute_features(tx(3600), regular)
    night = compute_features(tx(-9 * 3600), regular)  # 03:00 UTC
    assert usual.hour_rarity == pytest.approx(1 - (4 + 1 / 6) / 6)
    assert next_hour.hour_rarity == pytest.approx(1 - (2 + 1 / 6) / 6)
    assert night.hour_rarity == pytest.approx(1 - (1 / 6) / 6)


def test_merchant_risk_of_an_unknown_merchant_is_the_baseline(tx: MakeTx) -> None:
    assert compute_features(tx(0), UserState(), None).merchant_risk == BASELINE_RISK


def test_history_is_the_users_earlier_transactions(tx: MakeTx, regular: UserState) -> None:
    assert compute_features(tx(0), regular).history == 4


def test_features_use_event_time(tx: MakeTx, regular: UserState) -> None:
    later = T0.replace(year=2027)
    assert compute_features(tx(later), regular).tx_count_24h == 1
