"""An order history in the BG/NBD and Gamma-Gamma spirit, built with numpy, not per row.

For each customer of the population (see ``population.py``):

* the first order is at signup, spread over the window (monthly cohorts, more recent
  ones as the business grows, more around the holidays);
* repeat orders follow a Poisson process at the customer's own rate, in "seasonal time":
  the clock runs faster on Black Friday, Cyber Monday, before Christmas and at weekends;
* after each order the customer drops out with their own probability, so some never come
  back, some churn after a few orders and others stay for years;
* order values are gamma distributed around the customer's own spend level;
* a few percent of orders are refunded days later (a ``refund`` row that names the order).

The result is one table sorted by time. Amounts are positive in the customer's currency;
``type`` tells purchases from refunds, and ``original_order_id`` links a refund to its order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecap import topics
from ecap.currency import FX_PER_USD, MINOR_UNITS
from ecap.events import ProductChange
from ecap.generator import population as population_module
from ecap.generator import wire
from ecap.generator.calendar import WEEKDAY_WEIGHTS, day_factors
from ecap.generator.geography import CITIES
from ecap.generator.population import (
    CATEGORIES,
    CHANNELS,
    DAY_MS,
    EMAIL_DOMAINS,
    HOUR_MS,
    METHODS,
    SEGMENTS,
    Population,
    hour_profile,
)
from ecap.generator.wire import Record

REFUND_SHARE = 0.04
"""Share of purchases refunded (some after the window ends, so a little less shows)."""
FAVOURITE_SHARE = 0.5
"""Share of a customer's orders in their favourite category."""
ORDER_SHAPE = 6.0
"""Gamma shape of a customer's order values (Gamma-Gamma's p)."""

COLUMNS = (
    "order_id",
    "customer_id",
    "order_time",
    "amount",
    "currency",
    "type",
    "original_order_id",
    "category",
    "product_id",
    "merchant_id",
    "region",
    "country",
    "city",
    "payment_method",
    "channel",
)


@dataclass(frozen=True)
class HistoryConfig:
    customers: int
    days: int
    seed: int
    end: datetime

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass(frozen=True)
class Orders:
    """The history as columns (numpy), sorted by time; see :func:`to_table` for names."""

    population: Population
    customer: np.ndarray
    time_ms: np.ndarray
    amount: np.ndarray
    refund: np.ndarray
    original: np.ndarray
    """Row index of the refunded purchase (-1 for purchases)."""
    category: np.ndarray
    product: np.ndarray
    instrument_slot: np.ndarray
    device_slot: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ms)


def generate(config: HistoryConfig) -> Orders:
    """Draw the whole history of ``config.customers`` customers over ``config.days`` days."""
    pop = population_module.build(
        config.customers, config.seed, config.end, acquisition_days=config.days
    )
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(32)[31])
    start_ms = int(config.start.timestamp() * 1000)
    end_ms = int(config.end.timestamp() * 1000)

    customer, time_ms = _purchase_times(rng, pop, start_ms, end_ms, config.days)
    n = len(customer)
    mean = pop.mean_spend_usd[customer]
    usd = rng.gamma(ORDER_SHAPE, mean / ORDER_SHAPE)
    fx = np.array([FX_PER_USD[c.currency] for c in CITIES])[pop.city[customer]]
    # Rounded to each currency's minor units (JPY: whole yen), at least one minor unit.
    scale = np.array([10.0 ** MINOR_UNITS[c.currency] for c in CITIES])[pop.city[customer]]
    amount = np.maximum(np.round(usd * fx * scale), 1) / scale

    weights = np.array([c.weight for c in CATEGORIES])
    other = rng.choice(len(CATEGORIES), size=n, p=weights / weights.sum())
    favourite = rng.random(n) < FAVOURITE_SHARE
    category = np.where(favourite, pop.favourite_category[customer], other)
    product = _products(pop, category, usd)
    instrument_slot = _slots(rng, pop.instrument_count[customer])
    device_slot = _slots(rng, pop.device_count[customer])

    refunded = np.flatnonzero(rng.random(n) < REFUND_SHARE)
    delay = rng.lognormal(np.log(7.0), 0.6, size=len(refunded)) * DAY_MS
    refund_time = time_ms[refunded] + delay.astype(np.int64)
    keep = refund_time < end_ms
    refunded, refund_time = refunded[keep], refund_time[keep]
    partial = rng.random(len(refunded)) < 0.25
    share = np.where(partial, rng.uniform(0.2, 0.8, len(refunded)), 1.0)
    refund_scale = scale[refunded]
    refund_amount = np.maximum(np.round(amount[refunded] * share * refund_scale), 1) / refund_scale

    all_time = np.concatenate([time_ms, refund_time])
    order = np.argsort(all_time, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    original = np.concatenate([np.full(n, -1), position[refunded]])

    def both(purchase: np.ndarray) -> np.ndarray:
        return np.concatenate([purchase, purchase[refunded]])[order]

    return Orders(
        population=pop,
        customer=both(customer),
        time_ms=all_time[order],
        amount=np.concatenate([amount, refund_amount])[order],
        refund=np.concatenate([np.zeros(n, bool), np.ones(len(refunded), bool)])[order],
        original=original[order],
        category=both(category),
        product=both(product),
        instrument_slot=both(instrument_slot),
        device_slot=both(device_slot),
    )


def _purchase_times(
    rng: np.random.Generator, pop: Population, start_ms: int, end_ms: int, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every purchase as (customer, epoch ms), unsorted.

    Seasonal time ``S`` advances by each day's relative activity, so a Poisson process at
    rate lambda in seasonal time shops more on peak days. After every order, the first
    included, the customer drops out with their probability p (the MBG/NBD variant of
    BG/NBD, which also gives the many one-time buyers real shops have).
    """
    first_day = datetime.fromtimestamp(start_ms / 1000, UTC).date()
    span = days + 1
    weekday = WEEKDAY_WEIGHTS[(np.arange(span) + first_day.weekday()) % 7]
    daily = day_factors(first_day, span) * weekday
    daily /= daily.mean()
    grid_ms = start_ms + np.arange(span + 1, dtype=np.int64) * DAY_MS
    seasonal = np.concatenate([[0.0], np.cumsum(daily)])

    signup = pop.signup_ms
    begin = np.interp(signup, grid_ms, seasonal)
    available = np.interp(end_ms, grid_ms, seasonal) - begin
    opportunities = rng.poisson(pop.purchase_rate * np.maximum(available, 0))
    lifetime = rng.geometric(pop.dropout) - 1  # repeat orders before dropping out
    repeats = np.minimum(opportunities, lifetime)

    owner = np.repeat(np.arange(pop.size), opportunities)
    draw = rng.random(len(owner))
    order = np.argsort(owner + draw, kind="stable")
    sorted_draw = draw[order]
    first_of_owner = np.concatenate([[0], np.cumsum(opportunities)[:-1]])
    rank = np.arange(len(owner)) - np.repeat(first_of_owner, opportunities)
    kept = rank < repeats[owner]
    owner, sorted_draw = owner[kept], sorted_draw[kept]
    warped = begin[owner] + sorted_draw * available[owner]
    day_ms = np.interp(warped, seasonal, grid_ms).astype(np.int64)
    repeat_ms = _time_of_day(rng, pop, owner, day_ms)
    repeat_ms = np.clip(repeat_ms, signup[owner] + 60_000, end_ms - 1)

    customers = np.concatenate([np.arange(pop.size), owner])
    times = np.concatenate([np.clip(signup, start_ms, end_ms - 1), repeat_ms])
    return customers, times


def _time_of_day(
    rng: np.random.Generator, pop: Population, owner: np.ndarray, day_ms: np.ndarray
) -> np.ndarray:
    """Move each order within its (local) day to an hour the customer usually shops at.

    Peaks are binned to 0.1 h so the hour profiles fit in a small table.
    """
    bins = np.round(pop.peak_hour[owner] * 10).astype(np.int64)
    low = int(bins.min()) if len(bins) else 0
    peaks = np.arange(low, int(bins.max(initial=low)) + 1) / 10
    cumulative = np.cumsum(hour_profile(peaks), axis=1)
    cumulative /= cumulative[:, -1:]
    flat = (cumulative + np.arange(len(peaks))[:, None]).ravel()
    row = bins - low
    hour = np.searchsorted(flat, row + rng.random(len(owner)) * 0.999999) - row * 24
    offset_ms = (np.array([c.utc_offset for c in CITIES]) * HOUR_MS)[pop.city[owner]]
    local_midnight = (day_ms + offset_ms.astype(np.int64)) // DAY_MS * DAY_MS
    within = (rng.random(len(owner)) * HOUR_MS).astype(np.int64)
    result: np.ndarray = local_midnight + hour * HOUR_MS + within - offset_ms.astype(np.int64)
    return result


def _products(pop: Population, category: np.ndarray, usd: np.ndarray) -> np.ndarray:
    """For each order, the product of its category priced closest to what was paid."""
    cat = pop.catalogue
    product = np.zeros(len(category), dtype=np.int64)
    for index in range(len(CATEGORIES)):
        rows = np.flatnonzero(category == index)
        members = np.flatnonzero(cat.category == index)
        if len(members) == 0:
            members = np.arange(len(cat))
        by_price = members[np.argsort(cat.price_usd[members])]
        prices = cat.price_usd[by_price]
        at = np.clip(np.searchsorted(prices, usd[rows]), 0, len(prices) - 1)
        product[rows] = by_price[at]
    return product


def _slots(rng: np.random.Generator, count: np.ndarray) -> np.ndarray:
    """Mostly the first of a customer's devices or instruments, sometimes another one."""
    other = (rng.random(len(count)) * count).astype(np.int64)
    slots: np.ndarray = np.where(rng.random(len(count)) < 0.75, 0, other)
    return slots


# ---------------------------------------------------------------------- as a table


def to_table(orders: Orders) -> pa.Table:
    """The history as an Arrow table with the file columns (:data:`COLUMNS`)."""
    pop = orders.population
    cat = pop.catalogue
    tag = pop.tag
    n = len(orders)
    city = pop.city[orders.customer]
    row_ids = _ids(np.arange(n), pa.array(np.where(orders.refund, f"r-{tag}-", f"o-{tag}-")), 9)
    original_ids = pc.take(row_ids, pa.array(np.where(orders.original < 0, 0, orders.original)))
    original_ids = pc.if_else(
        pa.array(orders.original < 0), pa.scalar(None, pa.string()), original_ids
    )
    methods = pop.instrument_method[orders.customer, orders.instrument_slot]
    channels = pop.device_channel[orders.customer, orders.device_slot]
    columns = {
        "order_id": row_ids,
        "customer_id": _ids(orders.customer, pa.scalar(f"c-{tag}-"), 7),
        "order_time": pa.array(orders.time_ms * 1000, type=pa.timestamp("us", tz="UTC")),
        "amount": pa.array(orders.amount),
        "currency": _names([c.currency for c in CITIES], city),
        "type": _names(["purchase", "refund"], orders.refund.astype(np.int64)),
        "original_order_id": original_ids,
        "category": _names([c.name for c in CATEGORIES], orders.category),
        "product_id": _ids(orders.product, pa.scalar(f"p-{tag}-"), 5),
        "merchant_id": _ids(cat.merchant[orders.product], pa.scalar(f"m-{tag}-"), 3),
        "region": _names([c.region for c in CITIES], city),
        "country": _names([c.country for c in CITIES], city),
        "city": _names([c.name for c in CITIES], city),
        "payment_method": _names([m.value for m in METHODS], methods),
        "channel": _names([c.value for c in CHANNELS], channels),
    }
    return pa.table(columns)


def _ids(numbers: np.ndarray, prefix: pa.Array | pa.Scalar, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    joined: pa.Array = pc.binary_join_element_wise(prefix, digits, "")
    return joined


def _names(values: list[str], index: np.ndarray) -> pa.Array:
    taken: pa.Array = pc.take(pa.array(values), pa.array(index))
    return taken


# ---------------------------------------------------------------------- as events


def kafka_records(orders: Orders) -> Iterator[Record]:
    """The history as events: the catalogue at the window start, then customer profiles
    (at signup) and full transactions, merged in time order. Ids match :func:`to_table`."""
    pop = orders.population
    cat = pop.catalogue
    clock = wire.Clock()
    first_ms = int(orders.time_ms[0]) if len(orders) else pop.anchor_ms
    stamp = clock.iso(first_ms)
    for product in range(len(cat)):
        payload = wire.product_update(
            product_id=cat.product_id(product),
            event_time=stamp,
            change=ProductChange.CREATED.value,
            name=cat.name[product],
            category=CATEGORIES[int(cat.category[product])].name,
            price=float(cat.price_usd[product]),
            cost=float(cat.cost_usd[product]),
            currency="USD",
            stock=int(cat.stock[product]),
            active=True,
        )
        yield Record(
            topics.PRODUCT_UPDATES, payload["product_id"].encode(), wire.dumps(payload), first_ms
        )

    people = _People(pop)
    signups = pop.signup_ms[: pop.n_customers]
    by_signup = np.argsort(signups, kind="stable").tolist()
    signup_list = signups.tolist()
    times = orders.time_ms.tolist()
    next_profile = 0
    columns = zip(
        orders.customer.tolist(),
        times,
        orders.amount.tolist(),
        orders.refund.tolist(),
        orders.original.tolist(),
        orders.category.tolist(),
        orders.product.tolist(),
        orders.instrument_slot.tolist(),
        orders.device_slot.tolist(),
        strict=True,
    )
    for row, (c, at, amount, refund, original, category, product, pay_slot, dev_slot) in enumerate(
        columns
    ):
        while next_profile < len(by_signup) and signup_list[by_signup[next_profile]] <= at:
            yield people.profile(by_signup[next_profile], clock)
            next_profile += 1
        city = people.city[c]
        method, instrument = people.instruments[c][pay_slot]
        device, channel = people.devices[c][dev_slot]
        payload = wire.transaction(
            transaction_id=f"{'r' if refund else 'o'}-{pop.tag}-{row:09d}",
            event_time=clock.iso(at),
            user_id=people.ids[c],
            session_id=None,
            merchant_id=cat.merchant_id(int(cat.merchant[product])),
            type="refund" if refund else "purchase",
            original_transaction_id=f"o-{pop.tag}-{original:09d}" if refund else None,
            amount=amount,
            currency=people.currency[city],
            items=[wire.line_item(cat.product_id(product), _CATEGORY_NAMES[category], 1, amount)],
            payment_method=method,
            payment_instrument_id=instrument,
            device_id=device,
            ip_address=people.ips[c],
            channel=channel,
            location=people.locations[city],
        )
        yield Record(topics.TRANSACTIONS, payload["user_id"].encode(), wire.dumps(payload), at)
    while next_profile < len(by_signup):
        yield people.profile(by_signup[next_profile], clock)
        next_profile += 1


_CATEGORY_NAMES = [c.name for c in CATEGORIES]


class _People:
    """Per-customer strings, built once, for the event path."""

    def __init__(self, pop: Population) -> None:
        n = pop.size
        self.pop = pop
        self.ids = [pop.customer_id(i) for i in range(n)]
        self.city = pop.city.tolist()
        self.locations = [c.location_json() for c in CITIES]
        self.currency = [c.currency for c in CITIES]
        self.ips = [pop.ip_address(i) for i in range(n)]
        channels = pop.device_channel.tolist()
        methods = pop.instrument_method.tolist()
        self.devices = [
            [(pop.device_id(i, k), CHANNELS[channels[i][k]].value) for k in range(3)]
            for i in range(n)
        ]
        self.instruments = [
            [(METHODS[methods[i][k]].value, pop.instrument_id(i, k)) for k in range(3)]
            for i in range(n)
        ]
        self.segments = [SEGMENTS[s].value for s in pop.segment.tolist()]

    def profile(self, customer: int, clock: wire.Clock) -> Record:
        pop = self.pop
        signup = int(pop.signup_ms[customer])
        stamp = clock.iso(signup)
        payload = wire.customer(
            customer_id=self.ids[customer],
            event_time=stamp,
            signup_time=stamp,
            segment=self.segments[customer],
            home=self.locations[self.city[customer]],
            currency=self.currency[self.city[customer]],
            email_domain=EMAIL_DOMAINS[int(pop.email_domain[customer])],
            marketing_opt_in=bool(pop.marketing_opt_in[customer]),
        )
        return Record(topics.CUSTOMERS, self.ids[customer].encode(), wire.dumps(payload), signup)
