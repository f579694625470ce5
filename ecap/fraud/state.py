"""Per-user fraud state: everything the detector knows about one user, in one record.

The worker writes one changelog record per user per batch, so all of a user's state lives
in one :class:`UserState` serialised to compact bytes (``to_bytes`` / ``from_bytes``). It
holds:

* the times and amounts of the purchases of the last hour, oldest first, at most
  :data:`MAX_RECENT` (the 1 min, 10 min and 1 h counts and sums come from them), and the
  instruments, devices and IPs used in the last hour, each with its last use (the
  distinct counts come from these small maps, whose size is the distinct count itself,
  instead of from per-purchase columns that would have to be scanned per transaction).
  Per-purchase locations are not kept: distance and speed are measured from the last
  trusted location and from the known places, which is what the features need;
* hourly buckets (count, sum) for the 24-hour figures: the current calendar hour and the
  23 before it;
* a running mean and variance of the log amount (Welford) and the sum of amounts;
* the last trusted location and its time; the places, devices, instruments and IPs the
  user is known by, each with first-seen and last-seen times and a use count (bounded,
  least recently seen evicted first);
* an hour-of-day profile (UTC hours of trusted purchases);
* the ids of the last :data:`MAX_SEEN` transactions (``seen``) for idempotence, and the
  user's transaction count.

Event time is the clock everywhere (never the wall clock), so a replay rebuilds the same
state. Device, instrument and IP ids are kept as CRC-32 tokens and transaction ids as
64-bit BLAKE2b digests: the state never needs the strings back, only to compare them.

**Bytes.** ``to_bytes`` writes a ``struct`` header led by :data:`STATE_VERSION`, then three
little-endian blocks (float64, uint32, uint64): about 1.6 KB for a user with a full hour
of 64 purchases, 0.4 KB after a first purchase.

**Trust.** ``update(tx, trusted=False)`` is for a transaction the detector alerted on. It
counts in the velocity windows, the seen ids and the transaction count, but it does not
teach the profile: its device, instrument, IP and place stay unknown, its amount stays
out of the statistics, its hour out of the profile, and its location does not become
the last trusted one. Otherwise the first transaction of an attack would make the rest
of it look familiar (a fraudster's device seen 30 s ago is not the customer's device).
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from hashlib import blake2b
from typing import NamedTuple

from ecap.events import Transaction, TransactionType

STATE_VERSION = 1
"""First byte of the serialised state; bump it when the layout changes."""

RECENT_WINDOW_S = 3600.0
"""Purchases this much older than the newest one leave the recent columns."""
MAX_RECENT = 64
"""At most this many recent purchases are kept; above that the 1 h figures undercount."""
BUCKET_S = 3600
DAY_BUCKETS = 24
MAX_KNOWN = 16
"""Devices, instruments and IPs remembered per user (each kind separately), and the most
kept in each last-hour map."""
LAST_HOUR_SLACK = 4
"""Entries a last-hour map may hold before stale ones are dropped."""
MAX_PLACES = 8
"""Places (locations rounded to 0.1 degree) remembered per user."""
MAX_SEEN = 32
"""Transaction ids remembered for de-duplication: a redelivered batch is far shorter."""


class TxFacts(NamedTuple):
    """The parts of a transaction the state and the features use, extracted once."""

    digest: int
    """64-bit digest of the transaction id (:func:`id_digest`)."""
    time: float
    """Event time, epoch seconds."""
    amount: float
    instrument: int
    device: int
    ip: int
    lat: float
    lon: float
    purchase: bool


def token(value: str) -> int:
    """A stable 32-bit token for an id (CRC-32; Python's ``hash`` differs per process)."""
    return zlib.crc32(value.encode())


def id_digest(transaction_id: str) -> int:
    """A 64-bit digest of a transaction id, for the seen list."""
    return int.from_bytes(blake2b(transaction_id.encode(), digest_size=8).digest(), "big")


def facts(tx: Transaction) -> TxFacts:
    location = tx.location
    return TxFacts(
        id_digest(tx.transaction_id),
        tx.event_time.timestamp(),
        tx.amount,
        token(tx.payment_instrument_id),
        token(tx.device_id),
        token(tx.ip_address),
        location.lat,
        location.lon,
        tx.type is TransactionType.PURCHASE,
    )


def log_amount(amount: float) -> float:
    """The log scale of the amount statistics (a zero amount counts as one cent)."""
    return math.log(max(amount, 0.01))


def place_key(lat: float, lon: float) -> tuple[float, float]:
    return (round(lat, 1), round(lon, 1))


Known = dict[int, list[float]]
"""Token -> [first seen, last seen, uses]."""
Places = dict[tuple[float, float], list[float]]
"""Rounded (lat, lon) -> [lat, lon as first seen, first seen, last seen, uses]."""
LastHour = dict[int, float]
"""Token -> last use, for the instruments, devices or IPs of the last hour."""

_KNOWN = ("devices", "instruments", "ips")
_LAST_HOUR = ("hour_instruments", "hour_devices", "hour_ips")


class UserState:
    """All fraud state of one user. Attributes are read directly by ``features``."""

    __slots__ = (
        "count",
        "day_counts",
        "day_hours",
        "day_sums",
        "devices",
        "first_time",
        "hour_devices",
        "hour_instruments",
        "hour_ips",
        "hour_profile",
        "instruments",
        "ips",
        "last_lat",
        "last_loc_time",
        "last_lon",
        "last_time",
        "m2_log",
        "mean_log",
        "n_amounts",
        "places",
        "recent_amount",
        "recent_time",
        "seen_ids",
        "sum_amount",
    )

    def __init__(self) -> None:
        self.count = 0
        """Transactions processed for this user (purchases and refunds, trusted or not)."""
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.recent_time: list[float] = []
        self.recent_amount: list[float] = []
        self.hour_instruments: LastHour = {}
        self.hour_devices: LastHour = {}
        self.hour_ips: LastHour = {}
        self.day_hours: list[int] = []
        self.day_counts: list[int] = []
        self.day_sums: list[float] = []
        self.n_amounts = 0
        """Trusted purchases in the amount statistics."""
        self.mean_log = 0.0
        self.m2_log = 0.0
        self.sum_amount = 0.0
        self.last_lat: float | None = None
        self.last_lon: float | None = None
        self.last_loc_time: float | None = None
        self.devices: Known = {}
        self.instruments: Known = {}
        self.ips: Known = {}
        self.places: Places = {}
        self.hour_profile: list[int] = [0] * 24
        self.seen_ids: list[int] = []

    # ------------------------------------------------------------------ idempotence

    def seen(self, transaction_id: str) -> bool:
        """Whether this transaction was already applied to the state."""
        return id_digest(transaction_id) in self.seen_ids

    # ------------------------------------------------------------------ updates

    def update(self, tx: Transaction, *, trusted: bool = True) -> None:
        """Apply one transaction (see the module docstring for ``trusted``)."""
        self.apply(facts(tx), trusted=trusted)

    def apply(self, f: TxFacts, *, trusted: bool = True) -> None:
        """:meth:`update` from already extracted facts (the detector extracts them once)."""
        seen = self.seen_ids
        seen.append(f.digest)
        if len(seen) > MAX_SEEN:
            del seen[0]
        self.count += 1
        t = f.time
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t
        if not f.purchase:
            return
        self._add_recent(t, f.amount)
        _use(self.hour_instruments, f.instrument, t)
        _use(self.hour_devices, f.device, t)
        _use(self.hour_ips, f.ip, t)
        self._add_to_day(t, f.amount)
        if not trusted:
            return
        self._learn_amount(f.amount)
        if self.last_loc_time is None or t >= self.last_loc_time:
            self.last_lat, self.last_lon, self.last_loc_time = f.lat, f.lon, t
        _remember(self.devices, f.device, t)
        _remember(self.instruments, f.instrument, t)
        _remember(self.ips, f.ip, t)
        self._remember_place(f.lat, f.lon, t)
        self.hour_profile[int(t // 3600) % 24] += 1

    def _remember_place(self, lat: float, lon: float, t: float) -> None:
        key = place_key(lat, lon)
        places = self.places
        entry = places.get(key)
        if entry is None:
            places[key] = [lat, lon, t, t, 1]
            if len(places) > MAX_PLACES:
                del places[min(places, key=lambda k: places[k][3])]
        else:
            if t < entry[2]:
                entry[2] = t
            if t > entry[3]:
                entry[3] = t
            entry[4] += 1

    def _add_recent(self, t: float, amount: float) -> None:
        times = self.recent_time
        if times:
            newest = t if t > times[-1] else times[-1]
            if times[0] <= newest - RECENT_WINDOW_S or len(times) >= MAX_RECENT:
                drop = max(
                    bisect_right(times, newest - RECENT_WINDOW_S), len(times) + 1 - MAX_RECENT
                )
                del times[:drop]
                del self.recent_amount[:drop]
        if not times or t >= times[-1]:
            times.append(t)
            self.recent_amount.append(amount)
        else:
            at = bisect_right(times, t)
            times.insert(at, t)
            self.recent_amount.insert(at, amount)

    def _add_to_day(self, t: float, amount: float) -> None:
        hour = int(t // BUCKET_S)
        hours = self.day_hours
        if hours and hours[-1] == hour:
            self.day_counts[-1] += 1
            self.day_sums[-1] += amount
            return
        at = bisect_left(hours, hour)
        if at < len(hours) and hours[at] == hour:
            self.day_counts[at] += 1
            self.day_sums[at] += amount
            return
        hours.insert(at, hour)
        self.day_counts.insert(at, 1)
        self.day_sums.insert(at, amount)
        drop = bisect_left(hours, hours[-1] - DAY_BUCKETS + 1)
        if drop:
            del hours[:drop]
            del self.day_counts[:drop]
            del self.day_sums[:drop]

    def _learn_amount(self, amount: float) -> None:
        """Welford's online mean and variance of the log amount."""
        x = log_amount(amount)
        self.n_amounts += 1
        delta = x - self.mean_log
        self.mean_log += delta / self.n_amounts
        self.m2_log += delta * (x - self.mean_log)
        self.sum_amount += amount

    # ------------------------------------------------------------------ derived figures

    def window(self, now: float, seconds: float) -> tuple[int, float]:
        """Count and sum of purchases in ``(now - seconds, now]`` (``seconds`` <= 1 h)."""
        times = self.recent_time
        start = bisect_right(times, now - seconds)
        end = bisect_right(times, now)
        return end - start, math.fsum(self.recent_amount[start:end])

    def day(self, now: float) -> tuple[int, float]:
        """Count and sum of purchases in the current hour and the 23 before it."""
        hour = int(now // BUCKET_S)
        start = bisect_left(self.day_hours, hour - DAY_BUCKETS + 1)
        end = bisect_right(self.day_hours, hour)
        return sum(self.day_counts[start:end]), sum(self.day_sums[start:end])

    def distinct_last_hour(self, now: float) -> tuple[int, int, int]:
        """Distinct instruments, devices and IPs among the purchases of the last hour."""
        cutoff = now - RECENT_WINDOW_S
        return (
            sum(1 for last in self.hour_instruments.values() if last > cutoff),
            sum(1 for last in self.hour_devices.values() if last > cutoff),
            sum(1 for last in self.hour_ips.values() if last > cutoff),
        )

    @property
    def mean_amount(self) -> float | None:
        """Mean trusted purchase amount, or None before the first one."""
        return self.sum_amount / self.n_amounts if self.n_amounts else None

    # ------------------------------------------------------------------ bytes

    def to_bytes(self) -> bytes:
        """A ``struct`` header (scalars and lengths), then three little-endian blocks: every
        other float as float64, every count, hour and token as uint32, the seen digests as
        uint64. Three C conversions each way instead of one per column."""
        floats: list[float] = [*self.recent_time, *self.recent_amount, *self.day_sums]
        ints: list[int] = [*self.day_hours, *self.day_counts, *self.hour_profile]
        for name in _LAST_HOUR:
            last_hour: LastHour = getattr(self, name)
            ints += last_hour
            floats += last_hour.values()
        for name in _KNOWN:
            known: Known = getattr(self, name)
            ints += known
            entries = known.values()
            floats += [entry[0] for entry in entries]
            floats += [entry[1] for entry in entries]
            ints += [int(entry[2]) for entry in entries]
        places = self.places.values()
        for column in range(4):
            floats += [place[column] for place in places]
        ints += [int(place[4]) for place in places]
        blocks = (array("d", floats), array("I", ints), array("Q", self.seen_ids))
        if _BIG_ENDIAN:
            for block in blocks:
                block.byteswap()
        header = _HEADER.pack(
            STATE_VERSION,
            self.count,
            _nan(self.first_time),
            _nan(self.last_time),
            self.n_amounts,
            self.mean_log,
            self.m2_log,
            self.sum_amount,
            _nan(self.last_lat),
            _nan(self.last_lon),
            _nan(self.last_loc_time),
            len(self.recent_time),
            len(self.day_hours),
            len(self.seen_ids),
            *[len(getattr(self, name)) for name in _LAST_HOUR],
            *[len(getattr(self, name)) for name in _KNOWN],
            len(self.places),
        )
        return b"".join((header, *(block.tobytes() for block in blocks)))

    @classmethod
    def from_bytes(cls, data: bytes) -> UserState:
        """Rebuild a state from :meth:`to_bytes`; another layout version raises ValueError."""
        if not data or data[0] != STATE_VERSION:
            found = data[0] if data else "empty"
            raise ValueError(
                f"user state has layout version {found}, this code reads {STATE_VERSION}; "
                "rebuild the state by replaying the transactions topic"
            )
        try:
            return _read(cls(), memoryview(data))
        except (struct.error, ValueError) as exc:
            raise ValueError(f"user state bytes are truncated or corrupt: {exc}") from exc


_HEADER = struct.Struct("<BIddIddddddHHHHHHHHHH")
"""Version, count, first and last time, n/mean/M2 of log amounts, sum of amounts, last
trusted lat/lon/time (NaN for none), then the lengths: recent purchases, day buckets,
seen ids, the three last-hour maps, the three known sets, places."""
_BIG_ENDIAN = sys.byteorder == "big"
if array("I").itemsize != 4 or array("Q").itemsize != 8:  # exotic C ABIs only
    raise ImportError("ecap.fraud.state needs 4-byte 'I' and 8-byte 'Q' arrays for its bytes")


def _read(state: UserState, view: memoryview) -> UserState:
    (
        _,
        state.count,
        first_time,
        last_time,
        state.n_amounts,
        state.mean_log,
        state.m2_log,
        state.sum_amount,
        last_lat,
        last_lon,
        last_loc_time,
        n_recent,
        n_day,
        n_seen,
        *sizes,
    ) = _HEADER.unpack_from(view)
    state.first_time, state.last_time = _none(first_time), _none(last_time)
    state.last_lat, state.last_lon = _none(last_lat), _none(last_lon)
    state.last_loc_time = _none(last_loc_time)
    hour_sizes, known_sizes, n_places = sizes[:3], sizes[3:6], sizes[6]
    n_floats = 2 * n_recent + n_day + sum(hour_sizes) + 2 * sum(known_sizes) + 4 * n_places
    n_ints = 2 * n_day + 24 + sum(hour_sizes) + 2 * sum(known_sizes) + n_places
    ends = _HEADER.size + 8 * n_floats, _HEADER.size + 8 * n_floats + 4 * n_ints
    if ends[1] + 8 * n_seen != len(view):
        raise ValueError(f"{len(view)} bytes, the header announces {ends[1] + 8 * n_seen}")
    floats, ints, seen = array("d"), array("I"), array("Q")
    floats.frombytes(view[_HEADER.size : ends[0]])
    ints.frombytes(view[ends[0] : ends[1]])
    seen.frombytes(view[ends[1] :])
    if _BIG_ENDIAN:
        for block in (floats, ints, seen):
            block.byteswap()
    f: list[float] = floats.tolist()
    i: list[int] = ints.tolist()
    state.seen_ids = seen.tolist()
    state.recent_time = f[:n_recent]
    state.recent_amount = f[n_recent : 2 * n_recent]
    state.day_sums = f[2 * n_recent : 2 * n_recent + n_day]
    state.day_hours = i[:n_day]
    state.day_counts = i[n_day : 2 * n_day]
    state.hour_profile = i[2 * n_day : 2 * n_day + 24]
    at_f, at_i = 2 * n_recent + n_day, 2 * n_day + 24
    for name, n in zip(_LAST_HOUR, hour_sizes, strict=True):
        setattr(state, name, dict(zip(i[at_i : at_i + n], f[at_f : at_f + n], strict=True)))
        at_f += n
        at_i += n
    for name, n in zip(_KNOWN, known_sizes, strict=True):
        tokens, uses = i[at_i : at_i + n], i[at_i + n : at_i + 2 * n]
        first, last = f[at_f : at_f + n], f[at_f + n : at_f + 2 * n]
        setattr(
            state,
            name,
            {k: [a, b, u] for k, a, b, u in zip(tokens, first, last, uses, strict=True)},
        )
        at_f += 2 * n
        at_i += 2 * n
    n = n_places
    lats, lons = f[at_f : at_f + n], f[at_f + n : at_f + 2 * n]
    first, last = f[at_f + 2 * n : at_f + 3 * n], f[at_f + 3 * n : at_f + 4 * n]
    state.places = {
        place_key(lat, lon): [lat, lon, a, b, u]
        for lat, lon, a, b, u in zip(lats, lons, first, last, i[at_i : at_i + n], strict=True)
    }
    return state


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _use(last_hour: LastHour, key: int, t: float) -> None:
    """Record a use in a last-hour map. Entries over an hour older than ``t`` are dropped
    once the map holds more than :data:`LAST_HOUR_SLACK` (readers check the time anyway),
    so the common user with one to three devices or cards never pays for a scan."""
    previous = last_hour.get(key)
    if previous is None or t > previous:
        last_hour[key] = t
    if len(last_hour) > LAST_HOUR_SLACK:
        cutoff = t - RECENT_WINDOW_S
        stale = [k for k, last in last_hour.items() if last <= cutoff]
        for k in stale:
            del last_hour[k]
        if len(last_hour) > MAX_KNOWN:
            del last_hour[min(last_hour, key=last_hour.__getitem__)]


def _remember(known: Known, key: int, t: float) -> None:
    entry = known.get(key)
    if entry is None:
        known[key] = [t, t, 1]
        if len(known) > MAX_KNOWN:
            del known[min(known, key=lambda k: known[k][1])]
    else:
        if t < entry[0]:
            entry[0] = t
        if t > entry[1]:
            entry[1] = t
        entry[2] += 1
