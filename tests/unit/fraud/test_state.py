"""UserState: windows derived from hand-written sequences, trust, bounds and bytes."""

from __future__ import annotations

import pytest

from ecap.fraud.state import MAX_RECENT, MAX_SEEN, STATE_VERSION, UserState, facts, token
from tests.unit.fraud.conftest import DAY, T0, MakeTx

NOW = T0.timestamp()


def test_window_counts_and_sums_over_one_and_ten_minutes_and_an_hour(tx: MakeTx) -> None:
    state = UserState()
    # 50 min, 9 min, 2 min and 30 s before T0
    for at, amount in ((-3000, 10.0), (-540, 20.0), (-120, 30.0), (-30, 40.0)):
        state.update(tx(at, amount=amount))
    assert state.window(NOW, 60) == (1, 40.0)
    assert state.window(NOW, 600) == (3, 90.0)
    assert state.window(NOW, 3600) == (4, 100.0)


def test_day_figures_cover_the_current_hour_and_the_23_before(tx: MakeTx) -> None:
    state = UserState()
    # T0 is 12:00 UTC: 11:59 today and 13:30 yesterday count, 12:30 yesterday does not
    for at, amount in ((-DAY + 1800, 5.0), (-DAY + 5400, 7.0), (-60, 11.0)):
        state.update(tx(at, amount=amount))
    assert state.day(NOW) == (2, 18.0)


def test_distinct_instruments_devices_and_ips_of_the_last_hour(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(-4000, instrument="pi-old", device="d-old", ip="198.51.100.9"))
    state.update(tx(-600, instrument="pi-a", device="d-1"))
    state.update(tx(-300, instrument="pi-b", device="d-1"))
    state.update(tx(-60, instrument="pi-a", device="d-2"))
    assert state.distinct_last_hour(NOW) == (2, 2, 1)


def test_recent_list_is_bounded(tx: MakeTx) -> None:
    state = UserState()
    for i in range(MAX_RECENT + 10):
        state.update(tx(i))
    assert len(state.recent_time) == MAX_RECENT
    assert state.window(NOW + MAX_RECENT + 10, 3600)[0] == MAX_RECENT


def test_an_out_of_order_purchase_is_counted_in_its_place(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(-30))
    state.update(tx(-300))
    assert list(state.recent_time) == sorted(state.recent_time)
    assert state.window(NOW, 60)[0] == 1


def test_seen_remembers_applied_transactions_only(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(0, transaction_id="tx-a"))
    assert state.seen("tx-a")
    assert not state.seen("tx-b")


def test_seen_forgets_after_max_seen_transactions(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(0, transaction_id="tx-first"))
    for i in range(MAX_SEEN):
        state.update(tx(i + 1))
    assert not state.seen("tx-first")


def test_welford_mean_and_variance_of_log_amounts(tx: MakeTx) -> None:
    state = UserState()
    for amount in (10.0, 100.0, 1000.0):
        state.update(tx(0, amount=amount))
    # logs are ln10 * (1, 2, 3): mean 2 ln10, squared deviations sum 2 ln10^2
    assert state.mean_log == pytest.approx(2 * 2.302585, rel=1e-6)
    assert state.m2_log == pytest.approx(2 * 2.302585**2, rel=1e-6)
    assert state.mean_amount == pytest.approx(370.0)


def test_untrusted_purchase_counts_in_windows_but_teaches_nothing(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(-600, amount=50.0))
    state.update(
        tx(-60, amount=900.0, device="d-thief", instrument="pi-x", ip="192.0.2.1"),
        trusted=False,
    )
    assert state.window(NOW, 3600) == (2, 950.0)
    assert token("d-thief") not in state.devices
    assert token("pi-x") not in state.instruments
    assert state.mean_amount == 50.0
    assert state.last_loc_time == NOW - 600


def test_refund_is_seen_and_counted_but_not_a_purchase(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(0, kind="refund", transaction_id="tx-r"))
    assert state.seen("tx-r")
    assert state.count == 1
    assert state.window(NOW, 60) == (0, 0.0)


def test_known_devices_are_bounded_least_recently_seen_first(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(0, device="d-0"))
    for i in range(1, 17):
        state.update(tx(i, device=f"d-{i}"))
    assert token("d-0") not in state.devices
    assert token("d-16") in state.devices


def test_round_trip_keeps_every_field(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(-5000, amount=12.5, device="d-1", transaction_id="tx-rt"))
    state.update(tx(-60, amount=80.0, instrument="pi-2", ip="198.51.100.1"))
    state.update(tx(-30, amount=999.0, device="d-x"), trusted=False)
    restored = UserState.from_bytes(state.to_bytes())
    assert restored.to_bytes() == state.to_bytes()
    assert restored.devices == state.devices
    assert restored.places == state.places
    assert restored.window(NOW, 3600) == state.window(NOW, 3600)
    assert restored.seen("tx-rt")


def test_round_trip_of_an_empty_state() -> None:
    assert UserState.from_bytes(UserState().to_bytes()).to_bytes() == UserState().to_bytes()


def test_bytes_of_another_layout_version_are_refused() -> None:
    data = bytes([STATE_VERSION + 1]) + UserState().to_bytes()[1:]
    with pytest.raises(ValueError, match=f"layout version {STATE_VERSION + 1}"):
        UserState.from_bytes(data)


def test_truncated_bytes_are_refused(tx: MakeTx) -> None:
    state = UserState()
    state.update(tx(0))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        UserState.from_bytes(state.to_bytes()[:-3])


def test_a_busy_user_fits_in_two_kilobytes(tx: MakeTx) -> None:
    state = UserState()
    for i in range(MAX_RECENT + MAX_SEEN):
        state.update(tx(i, instrument=f"pi-{i % 3}", device=f"d-{i % 2}"))
    assert len(state.to_bytes()) < 2048


def test_facts_take_event_time_not_wall_time(tx: MakeTx) -> None:
    assert facts(tx(-DAY)).time == NOW - DAY
