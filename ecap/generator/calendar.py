"""When people shop: the time-of-day, day-of-week and seasonal curves of the generator.

All three are multiplicative weights around 1. Hours are the customer's local hours. The
hours 01:00-05:59 carry no legitimate activity at all: that quiet window is what makes
the ``odd_hours`` fraud scenario a behavioural signal rather than noise.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import numpy as np

HOUR_WEIGHTS = np.array(
    [
        0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.12, 0.3, 0.5, 0.62, 0.72, 0.78,
        0.88, 0.82, 0.76, 0.76, 0.82, 0.92, 1.0, 1.1, 1.2, 1.15, 0.9, 0.55,
    ]
)  # fmt: skip
"""Relative activity by local hour of day (index 0 = midnight to 1am)."""

QUIET_HOURS = range(1, 6)
"""Local hours without any legitimate activity."""

WEEKDAY_WEIGHTS = np.array([0.95, 0.95, 1.0, 1.0, 1.05, 1.2, 1.15])
"""Relative activity by local day of week, Monday first."""

_MONTH_WEIGHTS = (0.9, 0.88, 0.95, 0.95, 1.0, 0.95, 1.0, 0.95, 0.95, 1.0, 1.08, 1.3)


def thanksgiving(year: int) -> date:
    """US Thanksgiving: the fourth Thursday of November."""
    first = date(year, 11, 1)
    first_thursday = 1 + (3 - first.weekday()) % 7
    return date(year, 11, first_thursday + 21)


def black_friday(year: int) -> date:
    return thanksgiving(year) + timedelta(days=1)


@lru_cache(maxsize=4096)
def day_factor(day: date) -> float:
    """Seasonal weight of a calendar day: Black Friday, Cyber Monday and Christmas peaks."""
    factor = _MONTH_WEIGHTS[day.month - 1]
    bf = black_friday(day.year)
    offset = (day - bf).days
    if offset == -1:
        factor *= 1.4  # Thanksgiving evening deals
    elif offset == 0:
        factor *= 3.2  # Black Friday
    elif offset in (1, 2):
        factor *= 1.9  # the weekend after
    elif offset == 3:
        factor *= 2.6  # Cyber Monday
    elif 4 <= offset <= 7:
        factor *= 1.3
    if day.month == 12:
        if day.day <= 20:
            factor *= 1.0 + 0.4 * day.day / 20  # the run-up to Christmas
        elif day.day <= 23:
            factor *= 1.45
        elif day.day == 24:
            factor *= 0.85
        elif day.day == 25:
            factor *= 0.45
        elif day.day == 26:
            factor *= 1.35  # Boxing Day sales
    if day.month == 1 and day.day == 1:
        factor *= 0.6
    return factor


def day_factors(first: date, days: int) -> np.ndarray:
    """:func:`day_factor` for ``days`` consecutive days starting at ``first``."""
    return np.array([day_factor(first + timedelta(days=i)) for i in range(days)])
