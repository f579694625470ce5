"""The stream engine: a discrete-event simulation that yields records in event-time order.

A run is a sequence of records fixed by the seed alone. The simulated clock starts at
``start``; first the catalogue goes out (every product's ``created`` update, then every
customer's profile, ``rate`` per simulated second), then sessions arrive as a Poisson
process whose intensity follows the shop's time-of-day, day-of-week and seasonal curves,
normalised so that the run starts at ``rate`` records per wall-clock second. Sessions,
refunds and attacks are actors (generators) on one heap ordered by (time, sequence).

Nothing here sleeps or does I/O: pacing by the wall clock and producing to Kafka happen
in ``sinks.py``, so the same records come out whether they are sent, written or counted.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from ecap.events import ProductChange
from ecap.generator import population as population_module
from ecap.generator.calendar import WEEKDAY_WEIGHTS, day_factor
from ecap.generator.fraud import FraudInjector
from ecap.generator.geography import CITIES
from ecap.generator.journeys import (
    PurchaseHook,
    anonymous_session,
    customer_session,
    product_change,
    prospect_session,
)
from ecap.generator.population import DAY_MS, HOUR_MS, Population
from ecap.generator.wire import Record
from ecap.generator.world import Actor, World

ANCHOR = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
"""Where the simulated clock starts when a seed is given and no start: Black Friday 2026."""

_EPOCH = date(1970, 1, 1)

P_ANONYMOUS = 0.2
"""Share of sessions by visitors who never log in."""
P_PRODUCT_CHANGE = 0.02
"""Chance, per session, of a price or stock change somewhere in the catalogue."""
PROSPECT_SHARE = 0.03
"""Visitors who are not customers yet (and may sign up), relative to ``customers``."""
DEFAULT_CUSTOMERS, MIN_CUSTOMERS = 2000, 100
"""Bounds of the population size chosen from the run's length when none is given: small
enough that customers come back within a run and build the history fraud detection needs."""
CALIBRATION_SESSIONS = 2000
WARM_UP_MS = 120_000
"""Sessions start this long (simulated) before the first session record is sent, silently,
so the run opens with sessions in every stage of the funnel instead of ramping up."""


@dataclass(frozen=True)
class StreamConfig:
    """What to generate. ``rate`` is records per wall-clock second at ``start``."""

    rate: float
    duration: float
    seed: int
    fraud_rate: float = 0.01
    start: datetime = ANCHOR
    time_scale: float = 1.0
    customers: int | None = None
    """Signed-up customers; by default one per 25 records of the run, 100 to 2,000."""

    @property
    def population(self) -> int:
        if self.customers is not None:
            return self.customers
        return int(min(DEFAULT_CUSTOMERS, max(MIN_CUSTOMERS, self.rate * self.duration / 25)))

    @property
    def prospects(self) -> int:
        return int(self.population * PROSPECT_SHARE)

    @property
    def products(self) -> int:
        return population_module.default_products(self.population)

    @property
    def catalogue_records(self) -> int:
        """Records sent before the first session: products, then customer profiles."""
        return self.products + self.population

    def problems(self) -> list[str]:
        """What is inconsistent between the options, as messages saying what to change."""
        budget = self.rate * self.duration
        if self.catalogue_records >= budget:
            return [
                f"the catalogue alone ({self.products} products and {self.population} customer "
                f"profiles) needs {self.catalogue_records} records but --rate x --duration "
                f"allows {budget:.0f}; raise --duration or --rate, or lower --customers"
            ]
        return []


class Stream:
    """One run's records, in event-time order, as an iterator of :class:`Record`."""

    def __init__(self, config: StreamConfig) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.config = config
        self.population = population_module.build(
            config.population,
            config.seed,
            config.start,
            n_prospects=config.prospects,
            n_products=config.products,
        )
        self.world = World(self.population, config.seed, config.fraud_rate)
        self.fraud = FraudInjector(config.fraud_rate)
        self.start_ms = int(config.start.timestamp() * 1000)
        self.end_ms = self.start_ms + int(config.duration * config.time_scale * 1000)
        self._activity = _activity(self.population)
        self._hours = self.population.hour_profile()
        self._offsets = np.array([c.utc_offset for c in CITIES])[self.population.city]
        self._samplers: dict[int, tuple[list[float], float]] = {}
        self._started = False
        self._records_per_session = self._calibrate()
        self._base_weight = self._weight(self.start_ms)

    # ------------------------------------------------------------------ the engine

    def records(self) -> Iterator[Record]:
        """Every record of the run, in event-time order (ties in a fixed order).

        A run happens once: the world it mutates cannot be rewound, so a second call
        is refused; make a new :class:`Stream` from the same config to replay it.
        """
        if self._started:
            raise RuntimeError("this stream has already run; build a new Stream to replay it")
        self._started = True
        world = self.world
        sequence = itertools.count()
        sessions_from = self.start_ms + math.ceil(
            self.config.catalogue_records * 1000.0 / self.config.rate
        )
        world.live_from = sessions_from
        heap: list[tuple[int, int, Actor]] = [
            (self.start_ms, next(sequence), self._catalogue()),
            (sessions_from, next(sequence), self._arrivals()),
        ]
        heap.extend((wake, next(sequence), actor) for wake, actor in self._warm_up())
        heapq.heapify(heap)
        while heap and heap[0][0] < self.end_ms:
            at, _, actor = heapq.heappop(heap)
            world.now = at
            wake = next(actor, None)
            if wake is not None:
                heapq.heappush(heap, (wake, next(sequence), actor))
            if world.scheduled:
                for when, started in world.scheduled:
                    heapq.heappush(heap, (when, next(sequence), started))
                world.scheduled.clear()
            if world.out:
                batch, world.out = world.out, []
                yield from batch

    def session_rate(self, at_ms: int) -> float:
        """Expected sessions per simulated millisecond at ``at_ms``."""
        cfg = self.config
        records_per_ms = cfg.rate / (1000.0 * cfg.time_scale)
        ratio = self._weight(at_ms) / self._base_weight
        return records_per_ms * ratio / self._records_per_session

    def volume_ratio(self, at_ms: int) -> float:
        """Shop activity at ``at_ms`` relative to the start: the time-of-day curves."""
        return self._weight(at_ms) / self._base_weight

    # ------------------------------------------------------------------ actors

    def _catalogue(self) -> Actor:
        world = self.world
        spacing = 1000.0 / self.config.rate  # simulated: a burst when time is accelerated
        sent = 0
        for product in range(len(world.shop)):
            world.product_update(product, ProductChange.CREATED)
            sent += 1
            yield self.start_ms + int(sent * spacing)
        signups = self.population.signup_ms.tolist()
        for customer in range(self.population.n_customers):
            world.customer_profile(customer, signups[customer])
            sent += 1
            yield self.start_ms + int(sent * spacing)

    def _arrivals(self) -> Actor:
        """Session arrivals (and now and then a catalogue change), from the first live
        session on."""
        world = self.world
        clock = float(world.now)
        while True:
            world.schedule(world.now, self._session(world, world.now, self._after_purchase))
            world.tally.sessions += 1
            if world.rng.random() < P_PRODUCT_CHANGE:
                product_change(world)
            clock += world.rng.expovariate(self.session_rate(world.now))
            yield max(world.now, int(clock))

    def _warm_up(self) -> list[tuple[int, Actor]]:
        """Sessions that started before the first live one and are still going then.

        Each is stepped silently on its own (nothing they do before ``live_from`` is sent
        or changes shared state), which is far cheaper than running them on the heap.
        Returns (next step time, session) for the ones that survive into the run.
        """
        world = self.world
        live_from = world.live_from
        survivors: list[tuple[int, Actor]] = []
        clock = float(live_from - WARM_UP_MS)
        while clock < live_from:
            at = int(clock)
            world.now = at
            session = self._session(world, at, self._after_purchase)
            wake = next(session, None)
            while wake is not None and wake < live_from:
                world.now = wake
                wake = next(session, None)
            if wake is not None:
                survivors.append((wake, session))
            clock += world.rng.expovariate(self.session_rate(at))
        world.now = live_from
        return survivors

    def _session(self, world: World, at_ms: int, hook: PurchaseHook) -> Actor:
        rng = world.rng
        customer = self._pick_customer(rng, at_ms)
        if rng.random() < P_ANONYMOUS:
            return anonymous_session(world, world.city[customer])
        if not world.signed_up[customer]:
            return prospect_session(world, customer, hook)
        return customer_session(world, customer, hook)

    def _after_purchase(self, world: World, customer: int, tx_id: str, amount: float) -> None:
        world.purchases[customer] += 1
        self.fraud.after_purchase(world, customer)

    # ------------------------------------------------------------------ who shops when

    def _sampler(self, at_ms: int) -> tuple[list[float], float]:
        """Cumulative shopping weights of every customer during the hour of ``at_ms``."""
        hour = at_ms // HOUR_MS
        cached = self._samplers.get(hour)
        if cached is None:
            local = hour + 0.5 + self._offsets
            local_hour = np.floor(local).astype(np.int64) % 24
            weekday = (np.floor(local / 24).astype(np.int64) + 3) % 7  # 1970-01-01 a Thursday
            rows = np.arange(len(local_hour))
            weights = self._activity * self._hours[rows, local_hour] * WEEKDAY_WEIGHTS[weekday]
            cumulative = np.cumsum(weights)
            cached = (cumulative.tolist(), float(cumulative[-1]))
            if len(self._samplers) > 64:
                self._samplers.clear()
            self._samplers[hour] = cached
        return cached

    def _pick_customer(self, rng: random.Random, at_ms: int) -> int:
        cumulative, total = self._sampler(at_ms)
        index = bisect.bisect_right(cumulative, rng.random() * total)
        return min(index, len(cumulative) - 1)

    def _weight(self, at_ms: int) -> float:
        """Total shopping weight at ``at_ms``, interpolated between hour and day midpoints
        so the volume changes smoothly instead of jumping at every hour and midnight."""
        hours = at_ms / HOUR_MS - 0.5
        hour = math.floor(hours)
        into_hour = hours - hour
        low = self._sampler(hour * HOUR_MS)[1]
        high = self._sampler((hour + 1) * HOUR_MS)[1]
        days = at_ms / DAY_MS - 0.5
        day = math.floor(days)
        into_day = days - day
        first = _EPOCH + timedelta(days=day)
        season = (1 - into_day) * day_factor(first) + into_day * day_factor(
            first + timedelta(days=1)
        )
        return ((1 - into_hour) * low + into_hour * high) * season

    def _calibrate(self) -> float:
        """Records per session, measured on a scratch copy of the world (same seed)."""
        scratch = World(self.population, self.config.seed ^ 0x5EED, self.config.fraud_rate)
        scratch.now = self.start_ms
        records = 0
        for _ in range(CALIBRATION_SESSIONS):
            for wake in self._session(scratch, scratch.now, _ignore_purchase):
                scratch.now = wake
            records += len(scratch.out) + len(scratch.scheduled)
            scratch.out.clear()
            scratch.scheduled.clear()
        return max(1.0, records / CALIBRATION_SESSIONS + P_PRODUCT_CHANGE)


def _ignore_purchase(world: World, customer: int, tx_id: str, amount: float) -> None:
    """Calibration sessions build no history and trigger no fraud."""


def _activity(population: Population) -> np.ndarray:
    """How often each person visits: their purchase rate plus a floor for browsers."""
    rate = population.purchase_rate
    activity: np.ndarray = rate + 0.3 * float(np.mean(rate))
    return activity
