"""Rebase and snapshot records: what carries a KPI ledger across a reset log."""

from __future__ import annotations

from ecap.events import WindowKind
from ecap.kpis.ledger import Delta, Ledger
from ecap.kpis.ledger_reset import (
    PART_BYTES,
    Rebase,
    SnapshotReader,
    decode_part,
    restore,
    snapshot_records,
)
from ecap.kpis.windows import minute_of, tumbling
from tests.unit.kpis.conftest import T0_MS

MINUTE = minute_of(T0_MS)
KINDS = (WindowKind.TUMBLING_1M, WindowKind.HOPPING_1H)


def _delta(partition: int, first: int, last: int, user: str = "u-1") -> Delta:
    d = Delta(partition, first, last, arrived_ms=1000, watermark=T0_MS + 1000)
    d.add[(MINUTE, "orders", "all", "all")] += last - first + 1
    d.members[(MINUTE, "customers", "all", "all")].add(user)
    d.late[tumbling(MINUTE)] += 1
    d.sessions[f"s-{user}"] = [1, T0_MS, 2]
    return d


def _ledger() -> Ledger:
    ledger = Ledger(2, KINDS, session_gap_ms=30 * 60_000)
    ledger.apply(_delta(0, 0, 9, "u-1"))
    ledger.apply(_delta(1, 0, 4, "u-2"))
    return ledger


def _load(records: list[tuple[bytes, bytes]]) -> Ledger:
    reader = SnapshotReader()
    loaded = Ledger(2, KINDS, session_gap_ms=30 * 60_000)
    for _, value in records:
        body = reader.offer(decode_part(value))
        if body is not None:
            assert restore(loaded, body) == "topic-id-1"
    return loaded


def test_a_snapshot_restores_every_count_set_session_and_offset() -> None:
    ledger = _ledger()
    loaded = _load(snapshot_records(ledger, "topic-id-1", "snap-1"))
    assert loaded.applied == {0: 9, 1: 4}
    assert loaded.slices == ledger.slices
    assert loaded.sets == ledger.sets
    assert loaded.totals == ledger.totals
    assert loaded.late == ledger.late
    assert loaded.sessions == ledger.sessions
    assert loaded.max_event_ms == ledger.max_event_ms


def test_a_large_snapshot_is_cut_into_parts_that_join_again() -> None:
    ledger = _ledger()
    for n in range(40_000):
        ledger.sets[MINUTE][("counted", "all", "all")].add(f"tx-{n:032d}")
    records = snapshot_records(ledger, "topic-id-1", "snap-1")
    assert len(records) > 1
    assert all(len(value) < PART_BYTES + 200 for _, value in records)
    assert _load(records).sets == ledger.sets


def test_a_reader_loads_the_first_snapshot_and_ignores_a_second() -> None:
    first = snapshot_records(_ledger(), "topic-id-1", "snap-1")
    other = Ledger(2, KINDS)
    other.apply(_delta(0, 0, 99, "u-9"))
    second = snapshot_records(other, "topic-id-2", "snap-2")
    assert _load(first + second).applied == {0: 9, 1: 4}


def test_a_rebase_forgets_the_offsets_it_names_so_the_new_log_counts() -> None:
    ledger = _ledger()
    _, value = Rebase({0: 9, 1: 4}, {0: 3, 1: 0}, "topic-id-2").encode()
    assert ledger.rebase(Rebase.decode(value).held) == [0, 1]
    assert ledger.apply(_delta(0, 0, 2))
    assert ledger.applied == {0: 2}


def test_a_rebase_read_again_leaves_a_partition_that_moved_on_alone() -> None:
    ledger = _ledger()
    rebase = Rebase({0: 9, 1: 4}, {}, None)
    ledger.rebase(rebase.held)
    ledger.apply(_delta(0, 0, 2))
    assert ledger.rebase(rebase.held) == []
    assert ledger.applied == {0: 2}
