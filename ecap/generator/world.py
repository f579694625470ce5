"""The state a stream run mutates, and the helpers that turn actions into records.

Journeys (``journeys.py``) and attacks (``fraud.py``) are generator functions that act on
a :class:`World`: each step emits records at ``world.now`` and yields the simulated time
of its next step. The world owns the one random generator of the run, so a seed fixes
every choice, and it knows nothing of Kafka: records pile up in ``world.out`` for the
engine (``stream.py``) to hand on.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ecap import topics
from ecap.currency import FX_PER_USD, MINOR_UNITS, max_amount
from ecap.events import (
    FraudScenario,
    ProductChange,
    TransactionType,
    UserEventType,
)
from ecap.generator import wire
from ecap.generator.geography import CITIES
from ecap.generator.population import (
    CATEGORIES,
    CHANNELS,
    EMAIL_DOMAINS,
    HOUR_MS,
    METHODS,
    SEGMENTS,
    Population,
)
from ecap.generator.wire import Record

Actor = Iterator[int]
"""A generator that acts at ``world.now`` and yields the simulated time it acts next."""


@dataclass(slots=True)
class Visit:
    """One browsing session: who (if known), from which device and place."""

    session_id: str
    customer: int
    user_id: str | None
    device_id: str
    channel: str
    city: int
    ip: str
    page: str = "/"
    events: int = 0


@dataclass(slots=True)
class Payment:
    """What a transaction is paid with and where it comes from."""

    method: str
    instrument_id: str
    device_id: str
    channel: str
    city: int
    ip: str


@dataclass
class Tally:
    """What a run produced, for the summary."""

    per_topic: Counter[str] = field(default_factory=Counter)
    fraud_per_scenario: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    purchases: int = 0
    refunds: int = 0
    signups: int = 0


class Shop:
    """The live catalogue: current prices (USD) and stock, searchable by price."""

    def __init__(self, population: Population) -> None:
        cat = population.catalogue
        self.ids = [cat.product_id(i) for i in range(len(cat))]
        self.category = [CATEGORIES[c].name for c in cat.category.tolist()]
        self.category_index = cat.category.tolist()
        self.price = cat.price_usd.tolist()
        self.cost = cat.cost_usd.tolist()
        self.stock = cat.stock.tolist()
        self.name = list(cat.name)
        self.merchant = [cat.merchant_id(m) for m in cat.merchant.tolist()]
        self.by_category: list[list[int]] = [[] for _ in CATEGORIES]
        for index, category in enumerate(self.category_index):
            self.by_category[category].append(index)
        self._sorted: tuple[list[float], list[int]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def set_price(self, product: int, price: float) -> None:
        self.price[product] = price
        self._sorted = None

    def near_price(self, rng: random.Random, target_usd: float) -> int:
        """A product priced close to ``target_usd`` (one of the few nearest)."""
        if self._sorted is None:
            order = sorted(range(len(self.price)), key=self.price.__getitem__)
            self._sorted = ([self.price[i] for i in order], order)
        prices, order = self._sorted
        at = bisect.bisect_left(prices, target_usd)
        low, high = max(0, at - 2), min(len(order), at + 2)
        return order[rng.randrange(low, max(high, low + 1))]


class World:
    """Population, catalogue and run state of one stream run, plus the record builders."""

    def __init__(self, population: Population, seed: int, fraud_rate: float) -> None:
        self.pop = population
        self.rng = random.Random(seed)
        self.fraud_rate = fraud_rate
        self.now = 0
        self.live_from = 0
        """Session records before this time are simulated but not emitted (the warm-up)."""
        self.out: list[Record] = []
        self.tally = Tally()
        self.clock = wire.Clock()
        self.shop = Shop(population)
        self.scheduled: list[tuple[int, Actor]] = []
        """Actors to start at a given time, picked up by the engine."""

        n = population.size
        self.city = population.city.tolist()
        self.locations = [c.location_json() for c in CITIES]
        self.currency = [c.currency for c in CITIES]
        self.fx = [FX_PER_USD[c.currency] for c in CITIES]
        self.digits = [MINOR_UNITS[c.currency] for c in CITIES]
        self.most = [_largest_amount(c.currency) for c in CITIES]
        """The largest plausible amount in each city's currency (the contract's limit)."""
        self.utc_offset = [c.utc_offset for c in CITIES]
        self.customer_ids = [population.customer_id(i) for i in range(n)]
        self.mean_spend = population.mean_spend_usd.tolist()
        self.favourite = population.favourite_category.tolist()
        self.segment = [SEGMENTS[s].value for s in population.segment.tolist()]
        self.devices = [
            [population.device_id(i, k) for k in range(int(population.device_count[i]))]
            for i in range(n)
        ]
        channels = population.device_channel.tolist()
        self.device_channels = [
            [CHANNELS[channels[i][k]].value for k in range(len(self.devices[i]))] for i in range(n)
        ]
        methods = population.instrument_method.tolist()
        self.instruments = [
            [
                (METHODS[methods[i][k]].value, population.instrument_id(i, k))
                for k in range(int(population.instrument_count[i]))
            ]
            for i in range(n)
        ]
        self.ips = [population.ip_address(i) for i in range(n)]
        self.signed_up = [i < population.n_customers for i in range(n)]
        self.purchases = [0] * n
        """Legitimate purchases in this run, per customer: their visible history."""
        self.blocked_until = [0] * n
        """Customers under attack (or just after one) start no legitimate checkout."""

    # ------------------------------------------------------------------ ids and time

    @property
    def live(self) -> bool:
        """Whether session activity now is emitted (False during the warm-up)."""
        return self.now >= self.live_from

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{self.rng.getrandbits(64):016x}"

    def local_hour(self, customer: int, at_ms: int) -> float:
        offset = self.utc_offset[self.city[customer]]
        return ((at_ms / HOUR_MS) + offset) % 24

    def local_amount(self, usd: float, city: int) -> float:
        """A dollar amount in the city's currency, rounded to its minor units (an ``int``
        for a currency without decimals, such as JPY), at most the plausibility limit."""
        digits = self.digits[city]
        local = usd * self.fx[city]
        return min(round(local, digits) if digits else round(local), self.most[city])

    def schedule(self, at_ms: int, actor: Actor) -> None:
        self.scheduled.append((at_ms, actor))

    # ------------------------------------------------------------------ emitting

    def _emit(self, topic: str, key: str, payload: dict[str, Any]) -> None:
        self.out.append(Record(topic, key.encode(), orjson.dumps(payload), self.now))
        self.tally.per_topic[topic] += 1

    def visit(self, customer: int, device_slot: int) -> Visit:
        """A session of a known customer on one of their own devices, from home."""
        return Visit(
            session_id=self.new_id("s-"),
            customer=customer,
            user_id=None,
            device_id=self.devices[customer][device_slot],
            channel=self.device_channels[customer][device_slot],
            city=self.city[customer],
            ip=self.ips[customer],
        )

    def user_event(self, visit: Visit, kind: UserEventType, page: str, **extra: Any) -> None:
        visit.events += 1
        if self.now < self.live_from:
            visit.page = page
            return
        referrer = visit.page if visit.events > 1 else extra.pop("referrer", None)
        extra["referrer"] = referrer
        payload = wire.user_event(
            event_id=f"{visit.session_id}-{visit.events}",
            event_type=kind.value,
            event_time=self.clock.iso(self.now),
            session_id=visit.session_id,
            user_id=visit.user_id,
            device_id=visit.device_id,
            channel=visit.channel,
            location=self.locations[visit.city],
            page=page,
            extra=extra,
        )
        visit.page = page
        self._emit(topics.USER_EVENTS, visit.session_id, payload)

    def transaction(
        self,
        customer: int,
        session_id: str | None,
        basket: list[tuple[int, int, float]],
        pay: Payment,
        *,
        kind: TransactionType = TransactionType.PURCHASE,
        original: str | None = None,
        transaction_id: str | None = None,
    ) -> tuple[str, float]:
        """Emit a transaction for ``basket`` (product, quantity, unit price in the
        customer's currency); returns its id and amount."""
        tx_id = transaction_id or self.new_id("tx-")
        amount = round(sum(qty * unit for _, qty, unit in basket), 2)
        if self.now < self.live_from:
            return tx_id, amount
        currency = self.currency[self.city[customer]]
        items = [
            wire.line_item(self.shop.ids[p], self.shop.category[p], qty, unit)
            for p, qty, unit in basket
        ]
        top = max(basket, key=lambda line: line[1] * line[2])[0]
        payload = wire.transaction(
            transaction_id=tx_id,
            event_time=self.clock.iso(self.now),
            user_id=self.customer_ids[customer],
            session_id=session_id,
            merchant_id=self.shop.merchant[top],
            type=kind.value,
            original_transaction_id=original,
            amount=amount,
            currency=currency,
            items=items,
            payment_method=pay.method,
            payment_instrument_id=pay.instrument_id,
            device_id=pay.device_id,
            ip_address=pay.ip,
            channel=pay.channel,
            location=self.locations[pay.city],
        )
        self._emit(topics.TRANSACTIONS, self.customer_ids[customer], payload)
        return tx_id, amount

    def fraud_label(
        self, transaction_id: str, customer: int, scenario: FraudScenario, attack_id: str
    ) -> None:
        payload = wire.fraud_label(
            transaction_id=transaction_id,
            user_id=self.customer_ids[customer],
            scenario=scenario.value,
            attack_id=attack_id,
            event_time=self.clock.iso(self.now),
        )
        self._emit(topics.FRAUD_LABELS, transaction_id, payload)
        self.tally.fraud_per_scenario[scenario.value] += 1

    def customer_profile(self, customer: int, signup_ms: int) -> None:
        city = self.city[customer]
        payload = wire.customer(
            customer_id=self.customer_ids[customer],
            event_time=self.clock.iso(self.now),
            signup_time=self.clock.iso(signup_ms),
            segment=self.segment[customer],
            home=self.locations[city],
            currency=self.currency[city],
            email_domain=EMAIL_DOMAINS[int(self.pop.email_domain[customer])],
            marketing_opt_in=bool(self.pop.marketing_opt_in[customer]),
        )
        self._emit(topics.CUSTOMERS, self.customer_ids[customer], payload)

    def product_update(self, product: int, change: ProductChange) -> None:
        shop = self.shop
        payload = wire.product_update(
            product_id=shop.ids[product],
            event_time=self.clock.iso(self.now),
            change=change.value,
            name=shop.name[product],
            category=shop.category[product],
            price=shop.price[product],
            cost=shop.cost[product],
            currency="USD",
            stock=shop.stock[product],
            active=True,
        )
        self._emit(topics.PRODUCT_UPDATES, shop.ids[product], payload)

    # ------------------------------------------------------------------ shopping helpers

    def basket(self, customer: int, target_usd: float, city: int) -> list[tuple[int, int, float]]:
        """Products adding up to about ``target_usd``: one to three lines, local prices."""
        rng = self.rng
        draw = rng.random()
        lines = 1 if draw < 0.6 else 2 if draw < 0.88 else 3
        basket: list[tuple[int, int, float]] = []
        for _ in range(lines):
            share = target_usd / lines
            product = self.shop.near_price(rng, share)
            price = self.shop.price[product]
            quantity = max(1, min(20, round(share / price))) if price < share / 1.5 else 1
            basket.append((product, quantity, self.local_amount(price, city)))
        return basket

    def usual_payment(self, customer: int, device_slot: int) -> Payment:
        """A customer's own instrument (mostly their first), on their own device, at home."""
        owned = self.instruments[customer]
        slot = 0 if len(owned) == 1 or self.rng.random() < 0.75 else self.rng.randrange(len(owned))
        method, instrument = owned[slot]
        return Payment(
            method=method,
            instrument_id=instrument,
            device_id=self.devices[customer][device_slot],
            channel=self.device_channels[customer][device_slot],
            city=self.city[customer],
            ip=self.ips[customer],
        )

    def took_up_device(self, customer: int) -> bool:
        """Whether the customer has a device beyond the population's (see new_device)."""
        return len(self.devices[customer]) > self.pop.device_count[customer]

    def took_up_instrument(self, customer: int) -> bool:
        """Whether the customer has a card beyond the population's (see new_instrument)."""
        return len(self.instruments[customer]) > self.pop.instrument_count[customer]

    def new_device(self, customer: int) -> int:
        """A device the customer has not used before (a new phone, a work laptop), theirs
        from now on; returns its slot."""
        device, channel = self.stranger_device()
        self.devices[customer].append(device)
        self.device_channels[customer].append(channel)
        return len(self.devices[customer]) - 1

    def new_instrument(self, customer: int) -> tuple[str, str]:
        """A card the customer has not paid with before (a replacement or a second one),
        of the same method as their first, theirs from now on: (method, instrument id)."""
        method = self.instruments[customer][0][0]
        instrument = f"pi-{self.rng.getrandbits(48):012x}"
        self.instruments[customer].append((method, instrument))
        return method, instrument

    def stranger_device(self) -> tuple[str, str]:
        """A device nobody in the population owns, and its channel."""
        return self.new_id("d-")[:14], self.rng.choice(CHANNELS).value


def _largest_amount(currency: str) -> float:
    """The largest amount in ``currency``'s minor units within the contract's limit."""
    digits = MINOR_UNITS[currency]
    most = max_amount(currency)
    if most is None:
        raise ValueError(f"the generator prices in {currency}, which has no rate")
    units = math.floor(most * 10**digits)
    return units / 10**digits if digits else units
