"""The ledger: deltas fold once, sets unite across partitions, windows publish when due."""

from __future__ import annotations

from ecap.events import WindowKind
from ecap.kpis.ledger import (
    Delta,
    Heartbeat,
    Ledger,
    Publisher,
    decode_record,
    encode_deltas,
    encode_heartbeats,
    offsets_of,
)
from ecap.kpis.windows import GRACE_MS, MINUTE_MS, minute_of, tumbling
from tests.unit.kpis.conftest import T0_MS

MINUTE = minute_of(T0_MS)
KINDS = (WindowKind.TUMBLING_1M, WindowKind.HOPPING_1H)


def delta(partition: int, first: int, last: int, orders: int = 1, user: str = "u-1") -> Delta:
    d = Delta(partition, first, last, arrived_ms=1000, watermark=T0_MS + 1000)
    d.add[(MINUTE, "orders", "all", "all")] += orders
    d.members[(MINUTE, "customers", "all", "all")].add(user)
    return d


def closed_ledger(partitions: int = 1) -> Ledger:
    ledger = Ledger(partitions, KINDS)
    for p in range(partitions):
        ledger.apply_heartbeat(Heartbeat(p, caught_up=True, arrived_ms=None))
    return ledger


def test_a_delta_survives_its_bytes() -> None:
    d = delta(3, 10, 20)
    d.late[tumbling(MINUTE)] = 2
    d.sessions["s-1"] = [0, T0_MS, 2]
    key, value = encode_deltas([d, delta(5, 1, 2)])
    records = decode_record(key, value)
    assert len(records) == 2
    back = records[0]
    assert isinstance(back, Delta)
    assert (back.partition, back.first, back.last, back.watermark) == (3, 10, 20, T0_MS + 1000)
    assert back.add == {(MINUTE, "orders", "all", "all"): 1}
    assert back.members == {(MINUTE, "customers", "all", "all"): {"u-1"}}
    assert back.late == {tumbling(MINUTE): 2}
    assert back.sessions == {"s-1": [0, T0_MS, 2]}
    assert offsets_of(key) == [(3, 10, 20), (5, 1, 2)]


def test_heartbeats_survive_their_bytes() -> None:
    beats = [
        Heartbeat(0, caught_up=True, arrived_ms=5),
        Heartbeat(1, caught_up=False, arrived_ms=None),
    ]
    key, value = encode_heartbeats(beats)
    assert decode_record(key, value) == beats
    assert offsets_of(key) is None


def test_a_delta_folds_once() -> None:
    ledger = Ledger(1, KINDS)
    assert ledger.apply(delta(0, 0, 9))
    assert not ledger.apply(delta(0, 0, 9))
    assert ledger.cells(tumbling(MINUTE))[("orders", "all", "all")] == 1
    assert ledger.is_applied(0, 9)
    assert not ledger.is_applied(0, 10)


def test_partitions_add_up_and_a_user_seen_on_two_counts_once() -> None:
    ledger = Ledger(2, KINDS)
    ledger.apply(delta(0, 0, 4, orders=2, user="u-1"))
    ledger.apply(delta(1, 0, 6, orders=3, user="u-1"))
    window = tumbling(MINUTE)
    assert ledger.cells(window)[("orders", "all", "all")] == 5
    assert ledger.unions(window)[("customers", "all", "all")] == {"u-1"}


def test_a_closed_window_is_published_final_once_and_again_when_it_changes() -> None:
    ledger = closed_ledger()
    ledger.apply(delta(0, 0, 0))
    publisher = Publisher()
    ledger.advance(now_ms=1000)  # the partition just had a record: W is its event time
    assert publisher.due(ledger, provisional=False) == []
    ledger.advance(now_ms=1000 + MINUTE_MS + GRACE_MS)  # quiet since: W follows the clock
    assert publisher.due(ledger, provisional=False) == [(tumbling(MINUTE), True)]
    assert publisher.due(ledger, provisional=False) == []
    ledger.apply(delta(0, 1, 1))
    assert publisher.due(ledger, provisional=False) == [(tumbling(MINUTE), True)]


def test_open_tumbling_windows_are_published_as_provisional_when_changed() -> None:
    ledger = closed_ledger()
    ledger.apply(delta(0, 0, 0))
    publisher = Publisher()
    assert publisher.due(ledger, provisional=True) == [(tumbling(MINUTE), False)]
    assert publisher.due(ledger, provisional=True) == []


def test_an_event_after_its_window_closed_is_late_and_a_long_gone_one_expired() -> None:
    ledger = Ledger(1, KINDS)
    ledger.clock.value = T0_MS + MINUTE_MS + GRACE_MS
    late = ledger.lateness(T0_MS + 5)
    assert late == [tumbling(MINUTE)]
    assert ledger.lateness(T0_MS + MINUTE_MS) == []
    ledger.clock.value = T0_MS + 3 * 60 * MINUTE_MS
    assert ledger.lateness(T0_MS) is None


def test_slices_far_behind_the_watermark_are_dropped() -> None:
    ledger = closed_ledger()
    ledger.apply(delta(0, 0, 0))
    ledger.clock.value = T0_MS + 3 * 60 * MINUTE_MS
    ledger.advance(now_ms=0)
    assert ledger.minutes() == []
    assert ledger.totals[("orders", "all", "all")] == 1
