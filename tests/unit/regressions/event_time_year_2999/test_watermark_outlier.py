"""One event time far ahead, even one inside the event-time bounds, does not drag the KPI
watermark ahead: a partition's mark is capped by its records' Kafka timestamps and the
wall clock (``Delta.ceiling``), so the events after it still count."""

from __future__ import annotations

from ecap.events import WindowKind
from ecap.kpis.ledger import Delta, Heartbeat, Ledger, decode_record, encode_deltas
from ecap.kpis.windows import HOUR_MS, MINUTE_MS

from .conftest import T0, YEAR_2999

T0_MS = int(T0.timestamp() * 1000)
KINDS = (WindowKind.TUMBLING_1M, WindowKind.HOPPING_1H)


QUIET_S = 10
"""Seconds after the records when the watermark is moved: the stream has gone quiet, so
``W`` goes on from the latest mark at wall-clock speed (``ecap.kpis.windows``)."""
NOW_MS = T0_MS + QUIET_S * 1000


def _ledger() -> Ledger:
    ledger = Ledger(2, KINDS)
    for partition in (0, 1):
        ledger.apply_heartbeat(Heartbeat(partition, caught_up=True, arrived_ms=None))
    return ledger


def _delta(partition: int, offset: int, event_ms: int, stamp_ms: int) -> Delta:
    """A batch of one record: event time ``event_ms``, Kafka timestamp ``stamp_ms``, taken
    on a wall clock equal to the timestamp."""
    delta = Delta(partition, offset, offset, arrived_ms=stamp_ms, ceiling=stamp_ms)
    delta.see(event_ms)
    return delta


def test_an_event_a_day_ahead_of_its_record_does_not_move_the_watermark() -> None:
    ledger = _ledger()
    ledger.apply(_delta(0, 0, T0_MS + 23 * HOUR_MS, T0_MS))
    ledger.apply(_delta(1, 0, T0_MS, T0_MS))
    assert ledger.advance(NOW_MS) == NOW_MS
    assert ledger.current_minute() == T0_MS // MINUTE_MS


def test_the_events_after_an_outlier_count_and_do_not_expire() -> None:
    ledger = _ledger()
    ledger.apply(_delta(0, 0, T0_MS + 23 * HOUR_MS, T0_MS))
    ledger.apply(_delta(1, 0, T0_MS, T0_MS))
    ledger.advance(NOW_MS)
    later = Delta(0, 1, 1, arrived_ms=NOW_MS, ceiling=NOW_MS)
    assert ledger.admit(later, NOW_MS)
    assert (later.expired, dict(later.late)) == (0, {})


def test_a_ledger_record_written_before_ceilings_is_capped_by_its_arrival() -> None:
    """A ledger topic that already holds a year-2999 delta heals when it is read again."""
    old = _delta(0, 0, int(YEAR_2999.timestamp() * 1000), T0_MS)
    key, value = encode_deltas([old])
    raw = value.replace(b',"ts":' + str(T0_MS).encode(), b"")
    assert b'"ts"' not in raw
    (read,) = decode_record(key, raw)
    ledger = _ledger()
    assert isinstance(read, Delta)
    ledger.apply(read)
    ledger.apply(_delta(1, 0, T0_MS, T0_MS))
    assert ledger.advance(NOW_MS) == NOW_MS
