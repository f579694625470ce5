"""An event time is checked against its record's Kafka timestamp (``ecap.event_time``):
a year-2999 or a 1970 event is refused, a backfill stamped with its event times is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pytest

from ecap.event_time import MESSAGE_PREFIX, Bound, Bounds, EventTimeError, to_ms
from ecap.events import FailureStage
from ecap.generator.history import HistoryConfig, generate, kafka_records
from ecap.settings import Settings
from spark_jobs import bronze, lake
from tests.unit.spark_jobs.test_bronze import TRANSACTION

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
NOW_MS = to_ms(NOW)
BOUNDS = Bounds.from_settings(Settings())
YEAR_2999_MS = to_ms(datetime(2999, 12, 31, tzinfo=UTC))


def _broken(event_ms: int, record_ms: int | None) -> Bound:
    with pytest.raises(EventTimeError) as caught:
        BOUNDS.check(event_ms, record_ms, NOW_MS)
    assert caught.value.stage is FailureStage.VALIDATE
    return caught.value.bound


def test_the_defaults_allow_a_day_ahead_and_a_week_behind() -> None:
    assert (BOUNDS.max_ahead_ms, BOUNDS.max_behind_ms) == (86_400_000, 7 * 86_400_000)


def test_a_year_2999_event_on_a_live_record_is_refused_as_ahead() -> None:
    assert _broken(YEAR_2999_MS, NOW_MS) is Bound.AHEAD


def test_a_year_2999_event_on_a_year_2999_record_is_refused_by_the_wall_clock() -> None:
    assert _broken(YEAR_2999_MS, YEAR_2999_MS) is Bound.AHEAD


def test_a_1970_event_is_refused_whatever_its_record_says() -> None:
    assert _broken(0, NOW_MS) is Bound.EARLIEST
    assert _broken(0, 0) is Bound.EARLIEST


def test_an_event_a_month_before_its_live_record_is_refused_as_behind() -> None:
    assert _broken(to_ms(NOW - timedelta(days=30)), NOW_MS) is Bound.BEHIND


def test_a_record_without_a_timestamp_is_checked_against_the_wall_clock() -> None:
    assert _broken(to_ms(NOW - timedelta(days=30)), None) is Bound.BEHIND
    assert _broken(to_ms(NOW + timedelta(days=2)), -1) is Bound.AHEAD


def test_an_event_within_the_bounds_passes() -> None:
    BOUNDS.check(to_ms(NOW + timedelta(hours=23)), NOW_MS, NOW_MS)
    BOUNDS.check(to_ms(NOW - timedelta(days=6)), NOW_MS, NOW_MS)


def test_the_error_says_which_bound_and_what_to_do() -> None:
    with pytest.raises(EventTimeError) as caught:
        BOUNDS.check(YEAR_2999_MS, NOW_MS, NOW_MS)
    message = str(caught.value)
    assert message.startswith("event time 2999-12-31T00:00:00Z is ")
    assert "after the record's timestamp" in message
    assert "ECAP_EVENT_TIME_MAX_AHEAD" in message


def test_a_backfill_of_two_years_of_history_passes_the_bounds() -> None:
    """``ecap generate history --to-kafka`` stamps each record with its event time."""
    orders = generate(HistoryConfig(customers=200, days=730, seed=5, end=NOW))
    for record in kafka_records(orders):
        event_ms = to_ms(datetime.fromisoformat(orjson.loads(record.value)["event_time"]))
        assert record.timestamp_ms == event_ms
        BOUNDS.check(event_ms, record.timestamp_ms, NOW_MS)


# ---------------------------------------------------------------------- the batch side


def _kafka(*pairs: tuple[bytes, datetime]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "partition": [0] * len(pairs),
            "offset": list(range(len(pairs))),
            "timestamp": [stamp for _, stamp in pairs],
            "key": [b"u1"] * len(pairs),
            "value": [value for value, _ in pairs],
        }
    )


@pytest.mark.parametrize(
    "when", [datetime(2999, 12, 31, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]
)
def test_ingest_sets_a_poisoned_transaction_aside_in_rejected(when: datetime) -> None:
    table = bronze.TABLES[lake.TRANSACTIONS]
    good = orjson.dumps(TRANSACTION)
    bad = orjson.dumps({**TRANSACTION, "transaction_id": "t2", "event_time": when.isoformat()})
    replayed = datetime(2024, 3, 2, tzinfo=UTC)
    rows = bronze.decode_batch(table, _kafka((good, replayed), (bad, NOW)), now=NOW).to_pylist()
    assert [row["_error"] is None for row in rows] == [True, False]
    assert rows[1]["_stage"] == "validate"
    assert rows[1]["_error"].startswith(MESSAGE_PREFIX)
    assert rows[1]["_value"] == bad


def test_ingest_keeps_a_replayed_history_stamped_with_its_event_times() -> None:
    table = bronze.TABLES[lake.TRANSACTIONS]
    old = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
    (row,) = bronze.decode_batch(
        table, _kafka((orjson.dumps(TRANSACTION), old)), now=NOW
    ).to_pylist()
    assert row["_error"] is None
