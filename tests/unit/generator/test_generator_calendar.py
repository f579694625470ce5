"""The seasonal and daily curves."""

from __future__ import annotations

from datetime import date

from ecap.generator.calendar import (
    HOUR_WEIGHTS,
    QUIET_HOURS,
    black_friday,
    day_factor,
    thanksgiving,
)


def test_thanksgiving_is_the_fourth_thursday_of_november() -> None:
    assert thanksgiving(2025) == date(2025, 11, 27)
    assert thanksgiving(2026) == date(2026, 11, 26)
    assert black_friday(2024) == date(2024, 11, 29)


def test_black_friday_and_cyber_monday_peak_far_above_an_october_day() -> None:
    october = day_factor(date(2026, 10, 14))
    assert day_factor(date(2026, 11, 27)) > 3 * october
    assert day_factor(date(2026, 11, 30)) > 2 * october


def test_december_builds_up_to_christmas_and_drops_on_the_day() -> None:
    assert (
        day_factor(date(2026, 12, 20))
        > day_factor(date(2026, 12, 2))
        > day_factor(date(2026, 10, 14))
    )
    assert day_factor(date(2026, 12, 25)) < 0.5 * day_factor(date(2026, 12, 20))


def test_nobody_shops_in_the_quiet_night_hours() -> None:
    assert all(HOUR_WEIGHTS[h] == 0 for h in QUIET_HOURS)
    assert HOUR_WEIGHTS.argmax() in range(18, 22)
