"""Features of one transaction, from the user's state *before* it is applied.

Each field of :class:`Features` is a number a rule can name (``FEATURE_NAMES``). Counts,
sums and distinct counts include the transaction itself, so the fifth purchase within a
minute has ``tx_count_1m == 5``. "Known" means seen on an earlier *trusted* purchase of
the user (see ``ecap.fraud.state``).

Cold start: a user without history is not anomalous by default. The ``new_*`` flags and
``unknown_*`` counts are 0 until the user has a known device/instrument/IP, the amount
ratio is 1 and the z-score 0 until there are trusted amounts to compare with, and the
z-score's variance is shrunk towards a prior (:data:`PRIOR_LOG_STD`) so that two similar
first purchases do not make every third one an outlier.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, fields

from ecap.events import Transaction
from ecap.fraud.merchant import MerchantStats, merchant_risk
from ecap.fraud.state import DAY_BUCKETS, TxFacts, UserState, facts, log_amount, place_key

EARTH_RADIUS_KM = 6371.0
MIN_TRAVEL_S = 60.0
"""Implied speed divides by at least this: two payments a second apart from two cities
are as impossible as a minute apart, not infinitely more."""
PRIOR_LOG_STD = 0.5
"""Prior spread of a customer's log amounts (a factor of about 1.65)."""
PRIOR_WEIGHT = 2.0
"""Pseudo-observations of the prior in the z-score's variance."""
MIN_Z_HISTORY = 2
"""Trusted purchases needed before the amount z-score is computed."""
SMALL_AMOUNT_RATIO = 0.25
"""A purchase below this share of the user's mean amount is small (card testing)."""
HOUR_PRIOR = 2.0
"""Pseudo-purchases spread evenly over the day in the hour-of-day rarity."""


@dataclass(slots=True)
class Features:
    amount: float
    """The amount, in the transaction's currency."""
    amount_z: float
    """(log amount - user's mean log amount) / shrunk standard deviation."""
    amount_ratio: float
    """Amount over the user's mean amount."""
    tx_count_1m: float
    tx_count_10m: float
    tx_count_1h: float
    tx_count_24h: float
    amount_sum_1m: float
    amount_sum_10m: float
    amount_sum_1h: float
    amount_sum_24h: float
    km_from_last: float
    """Great-circle distance from the last trusted purchase's location."""
    speed_kmh: float
    """km_from_last over the time since it (at least one minute)."""
    km_from_home: float
    """Distance to the nearest place the user is known at (0 within the same 0.1 degree
    cell; otherwise to where the place was first seen)."""
    new_device: float
    new_instrument: float
    new_ip: float
    distinct_devices_1h: float
    distinct_instruments_1h: float
    distinct_ips_1h: float
    unknown_devices_1h: float
    """Distinct devices of the last hour the user is not known by."""
    unknown_instruments_1h: float
    """Distinct payment instruments of the last hour the user is not known by."""
    small_amount_count_10m: float
    """Purchases of the last 10 minutes below SMALL_AMOUNT_RATIO of the user's mean."""
    local_hour: float
    """Hour of day at the transaction's location, UTC + longitude / 15 (0 to 24)."""
    hour_rarity: float
    """1 - the user's smoothed share of trusted purchases at this UTC hour (the hours
    either side count half; a prior of HOUR_PRIOR purchases is spread over the day)."""
    merchant_risk: float
    history: float
    """The user's transactions before this one."""


FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Features))


def compute_features(
    tx: Transaction, state: UserState, merchant: MerchantStats | None = None
) -> Features:
    """Features of ``tx`` against ``state`` as it was before ``tx``."""
    return features_from(facts(tx), state, merchant_risk(merchant))


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def features_from(f: TxFacts, state: UserState, risk: float) -> Features:
    """:func:`compute_features` from extracted facts and a merchant risk already scored."""
    t = f.time
    amount = f.amount
    times = state.recent_time
    amounts = state.recent_amount
    end = len(times) if not times or times[-1] <= t else bisect_right(times, t)
    i1m = bisect_right(times, t - 60.0, 0, end)
    i10m = bisect_right(times, t - 600.0, 0, i1m)
    i1h = 0 if not times or times[0] > t - 3600.0 else bisect_right(times, t - 3600.0, 0, i10m)
    hours = state.day_hours
    hour = int(t // 3600.0)
    if hours and hours[0] > hour - DAY_BUCKETS and hours[-1] <= hour:  # all in the window
        day_count, day_sum = sum(state.day_counts), sum(state.day_sums)
    else:
        day_count, day_sum = state.day(t)

    n = state.n_amounts
    ratio = 1.0
    z = 0.0
    small = 0
    if n:
        mean = state.sum_amount / n
        ratio = amount / max(mean, 0.01)
        cut = SMALL_AMOUNT_RATIO * mean
        small = sum(1 for a in amounts[i10m:end] if a <= cut) + (amount <= cut)
        if n >= MIN_Z_HISTORY:
            var = (state.m2_log + PRIOR_WEIGHT * PRIOR_LOG_STD**2) / (n - 1 + PRIOR_WEIGHT)
            z = (log_amount(amount) - state.mean_log) / math.sqrt(var)

    km_last = speed = km_home = 0.0
    last_lat, last_lon, last_at = state.last_lat, state.last_lon, state.last_loc_time
    moved = last_lat != f.lat or last_lon != f.lon  # if not: where the user last paid, 0 km
    if moved and last_lat is not None and last_lon is not None and last_at is not None:
        km_last = haversine_km(last_lat, last_lon, f.lat, f.lon)
        speed = km_last * 3600.0 / max(abs(t - last_at), MIN_TRAVEL_S)
        places = state.places
        if place_key(f.lat, f.lon) not in places:
            km_home = min(haversine_km(p[0], p[1], f.lat, f.lon) for p in places.values())

    cutoff = t - 3600.0
    devices, instruments = state.devices, state.instruments
    distinct_devices, unknown_devices = _last_hour(state.hour_devices, f.device, cutoff, devices)
    distinct_instruments, unknown_instruments = _last_hour(
        state.hour_instruments, f.instrument, cutoff, instruments
    )
    distinct_ips, _ = _last_hour(state.hour_ips, f.ip, cutoff, state.ips)

    profile = state.hour_profile
    hour %= 24
    near = profile[hour] + 0.5 * (profile[hour - 1] + profile[(hour + 1) % 24])
    rarity = 1.0 - (near + HOUR_PRIOR * 2.0 / 24.0) / (n + HOUR_PRIOR)

    return Features(
        amount=amount,
        amount_z=z,
        amount_ratio=ratio,
        tx_count_1m=end - i1m + 1,
        tx_count_10m=end - i10m + 1,
        tx_count_1h=end - i1h + 1,
        tx_count_24h=day_count + 1,
        amount_sum_1m=sum(amounts[i1m:end]) + amount,
        amount_sum_10m=sum(amounts[i10m:end]) + amount,
        amount_sum_1h=sum(amounts[i1h:end]) + amount,
        amount_sum_24h=day_sum + amount,
        km_from_last=km_last,
        speed_kmh=speed,
        km_from_home=km_home,
        new_device=float(bool(devices) and f.device not in devices),
        new_instrument=float(bool(instruments) and f.instrument not in instruments),
        new_ip=float(bool(state.ips) and f.ip not in state.ips),
        distinct_devices_1h=distinct_devices,
        distinct_instruments_1h=distinct_instruments,
        distinct_ips_1h=distinct_ips,
        unknown_devices_1h=unknown_devices,
        unknown_instruments_1h=unknown_instruments,
        small_amount_count_10m=small,
        local_hour=(t / 3600.0 + f.lon / 15.0) % 24.0,
        hour_rarity=rarity,
        merchant_risk=risk,
        history=state.count,
    )


def _last_hour(
    used: dict[int, float], current: int, cutoff: float, known: dict[int, list[float]]
) -> tuple[int, int]:
    """Distinct tokens used after ``cutoff`` (with ``current``), and how many of those the
    user is not known by (0 while nothing is known: cold start)."""
    distinct = unknown = 0
    for key, last in used.items():
        if last > cutoff and key != current:
            distinct += 1
            unknown += key not in known
    distinct += 1
    unknown += current not in known
    return distinct, unknown if known else 0
