"""Fraud injection: six attack scenarios against customers who already have a history.

Each scenario differs from legitimate traffic in behaviour a per-user stateful detector
can see, and in nothing else (the transactions carry no hint of the label):

==================  ==========================================================  =========
scenario            behaviour                                                   tx/attack
==================  ==========================================================  =========
card_testing        a burst of tiny amounts (0.50-2.99 USD), a new card each,   4-8
                    a new device, 3-20 s apart, from anywhere
account_takeover    login from a new device in another region >= 3,000 km       1-3
                    from home, 3-8x the customer's usual spend
impossible_travel   within about two minutes of a purchase at home, a           1-2
                    purchase >= 4,000 km away (far over 1,000 km/h), new device
amount_spike        own device, instrument and home, 8-20x the usual spend      1
odd_hours           own device, instrument and home, at 02:30-04:30 local,      1-2
                    hours in which legitimate customers are never active
many_instruments    4-6 payment instruments never seen before, 10-60 s          4-6
                    apart, new device, home city, ordinary amounts
==================  ==========================================================  =========

Attacks start seconds after they are decided, so that even a short run shows all six.
Victims are signed-up customers with at least ``MIN_HISTORY`` legitimate purchases earlier
in the run (the impossible-travel victim has just made one); odd-hours victims are any
customer whose local time is 02:30-04:00, since nobody has a history at that hour.

Legitimate customers own 1-3 devices and 1-3 instruments, shop from home at their usual
hours and spend around their own mean (gamma, coefficient of variation 0.41). Like real
customers they also do some of what fraud does, so that a detector has to read
behaviour, not a single signal: 5% of sessions come from another address in their city,
and a customer may take up a new device (2% per session) and a new card (1% per
purchase), each at most once per run (``journeys.P_NEW_DEVICE``, ``P_OTHER_NETWORK``,
``P_NEW_INSTRUMENT``).

Not modelled: night owls. Nobody but a fraudster shops between 01:00 and 06:00 local. A
run starts with no history, so a detector could not tell a night owl's first purchase in
the small hours from an odd-hours attack (tried: 2% night owls gave a per-user detector
49 false alarms in an hour against 16 odd-hours frauds); it would take a history loaded
before the run.

The ground truth is one ``FraudLabel`` per fraudulent transaction, on its own topic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ecap.events import FraudScenario, PaymentMethod, UserEventType
from ecap.generator.geography import CITIES, far_cities
from ecap.generator.population import CATEGORIES, HOUR_MS, ip_in_city
from ecap.generator.world import Actor, Payment, Visit, World

MIN_HISTORY = 2
"""Legitimate purchases a customer needs in the run before they can become a victim
(odd-hours victims excepted: nobody shops in the middle of their night)."""
PATIENCE = 50
"""Purchases to wait for a victim of the drawn scenario before drawing another one."""
COOL_DOWN_MS = 24 * HOUR_MS
"""A victim starts no legitimate checkout from the attack's start until this much later, so
their next purchase at home is not itself an impossible journey from the fraudster's city."""

SIZES: dict[FraudScenario, tuple[int, int]] = {
    FraudScenario.CARD_TESTING: (4, 8),
    FraudScenario.ACCOUNT_TAKEOVER: (1, 3),
    FraudScenario.IMPOSSIBLE_TRAVEL: (1, 2),
    FraudScenario.AMOUNT_SPIKE: (1, 1),
    FraudScenario.ODD_HOURS: (1, 2),
    FraudScenario.MANY_INSTRUMENTS: (4, 6),
}
"""Fraudulent transactions per attack (inclusive range)."""

SCENARIOS = tuple(SIZES)
WEIGHTS = tuple(2 / (low + high) for low, high in SIZES.values())
"""Attacks are drawn inversely to their size, so each scenario yields about as many
fraudulent transactions as any other."""

DIGITAL = next(i for i, c in enumerate(CATEGORIES) if c.name == "digital")
"""Card testers buy the cheapest digital goods: top-ups with an amount of their choice."""

ODD_HOURS_LOCAL = (2.5, 4.0)
"""Local start hours of odd-hours attacks (they last at most twenty minutes), in the middle
of the quiet window, so even a detector that only approximates local time from the
longitude (UTC + lon/15, off by -0.4 to +1.3 h for these cities) separates them."""


@dataclass(slots=True)
class Attack:
    scenario: FraudScenario
    attack_id: str
    victim: int
    size: int


class FraudInjector:
    """Decides when and against whom to attack, so fraud is ``rate`` of all purchases."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.owed = 0.0
        self.pending: FraudScenario | None = None
        self.waited = 0
        self.experienced: list[int] = []
        """Customers with at least MIN_HISTORY legitimate purchases in the run."""

    def after_purchase(self, world: World, buyer: int) -> None:
        """Called after each legitimate purchase, once the buyer's history is updated."""
        if world.purchases[buyer] == MIN_HISTORY:
            self.experienced.append(buyer)
        if self.rate <= 0:
            return
        self.owed += self.rate / (1 - self.rate)
        if self.owed < 1:
            return
        rng = world.rng
        scenario = self.pending or rng.choices(SCENARIOS, weights=WEIGHTS)[0]
        victim = self._victim(world, scenario, buyer)
        if victim is None:
            # try the same scenario after the next purchases, so the mix stays balanced
            self.waited += 1
            self.pending = scenario if self.waited < PATIENCE else None
            return
        self.pending = None
        self.waited = 0
        low, high = SIZES[scenario]
        attack = Attack(scenario, world.new_id("atk-"), victim, rng.randint(low, high))
        self.owed -= attack.size
        world.blocked_until[victim] = world.now + COOL_DOWN_MS
        start = world.now + start_delay(world, scenario)
        world.schedule(start, ATTACKS[scenario](world, attack))

    def _victim(self, world: World, scenario: FraudScenario, buyer: int) -> int | None:
        now = world.now
        if scenario is FraudScenario.IMPOSSIBLE_TRAVEL:
            # the buyer has just paid at home: the next purchase far away is impossible
            ok = world.purchases[buyer] >= MIN_HISTORY
            return buyer if ok else None
        rng = world.rng
        if scenario is FraudScenario.ODD_HOURS:
            for _ in range(64):
                candidate = rng.randrange(world.pop.n_customers)
                hour = world.local_hour(candidate, now)
                if world.blocked_until[candidate] <= now and (
                    ODD_HOURS_LOCAL[0] <= hour < ODD_HOURS_LOCAL[1]
                ):
                    return candidate
            return None
        for _ in range(8 if self.experienced else 0):
            candidate = rng.choice(self.experienced)
            if world.blocked_until[candidate] <= now:
                return candidate
        return None


# ---------------------------------------------------------------------- the attacks


def card_testing(world: World, attack: Attack) -> Actor:
    """Small amounts on a new card each time, a few seconds apart, by a bot."""
    rng = world.rng
    victim = attack.victim
    visit = _stranger_visit(world, victim, rng.randrange(len(CITIES)))
    yield from _fraud_login(world, visit)
    digital = world.shop.by_category[DIGITAL] or list(range(len(world.shop)))
    product = min(digital, key=world.shop.price.__getitem__)
    shop = world.shop
    world.user_event(
        visit,
        UserEventType.ADD_TO_CART,
        "/cart",
        product_id=shop.ids[product],
        category=shop.category[product],
        quantity=1,
    )
    world.user_event(visit, UserEventType.BEGIN_CHECKOUT, "/checkout")
    yield world.now + hurry(world)
    for _ in range(attack.size):  # then card after card at the payment step
        amount = world.local_amount(rng.uniform(0.5, 2.99), world.city[victim])
        pay = _payment(world, visit, PaymentMethod.CREDIT_CARD.value, world.new_id("pi-")[:15])
        _fraud_purchase(world, visit, [(product, 1, amount)], pay, attack, with_cart=False)
        yield world.now + rng.randint(3_000, 20_000)


def account_takeover(world: World, attack: Attack) -> Actor:
    """A new device far from home logs in and spends big with the stored card."""
    rng = world.rng
    victim = attack.victim
    far = [c for c in far_cities(world.city[victim], 3000) if _other_region(world, victim, c)]
    visit = _stranger_visit(world, victim, rng.choice(far))
    yield from _fraud_login(world, visit)
    method, instrument = world.instruments[victim][0]
    pay = _payment(world, visit, method, instrument)
    for _ in range(attack.size):
        target = world.mean_spend[victim] * rng.uniform(3.0, 8.0)
        basket = world.basket(victim, target, world.city[victim])
        yield from _fraud_checkout(world, visit, basket, pay, attack)
        yield world.now + rng.randint(20_000, 90_000)


def impossible_travel(world: World, attack: Attack) -> Actor:
    """Minutes after the customer paid at home, their card pays from another continent."""
    rng = world.rng
    victim = attack.victim
    visit = _stranger_visit(world, victim, rng.choice(far_cities(world.city[victim], 4000)))
    yield from _fraud_login(world, visit)
    method, instrument = world.instruments[victim][0]
    pay = _payment(world, visit, method, instrument)
    for _ in range(attack.size):
        target = world.mean_spend[victim] * rng.uniform(0.8, 2.0)
        basket = world.basket(victim, target, world.city[victim])
        _fraud_purchase(world, visit, basket, pay, attack, with_cart=True)
        yield world.now + rng.randint(20_000, 60_000)


def amount_spike(world: World, attack: Attack) -> Actor:
    """The customer's own device and card, from home, for far more than they ever spend."""
    rng = world.rng
    victim = attack.victim
    visit = world.visit(victim, 0)
    yield from _fraud_login(world, visit)
    pay = _own_payment(world, victim)
    target = world.mean_spend[victim] * rng.uniform(8.0, 20.0)
    basket = world.basket(victim, target, world.city[victim])
    yield from _fraud_checkout(world, visit, basket, pay, attack)


def odd_hours(world: World, attack: Attack) -> Actor:
    """The customer's own device and card, from home, in the middle of their night."""
    rng = world.rng
    victim = attack.victim
    visit = world.visit(victim, 0)
    yield from _fraud_login(world, visit)
    pay = _own_payment(world, victim)
    for _ in range(attack.size):
        target = world.mean_spend[victim] * rng.uniform(0.8, 2.5)
        basket = world.basket(victim, target, world.city[victim])
        yield from _fraud_checkout(world, visit, basket, pay, attack)
        yield world.now + rng.randint(30_000, 120_000)


def many_instruments(world: World, attack: Attack) -> Actor:
    """One new payment instrument after another, for ordinary amounts, minutes apart."""
    rng = world.rng
    victim = attack.victim
    visit = _stranger_visit(world, victim, world.city[victim])
    yield from _fraud_login(world, visit)
    methods = (PaymentMethod.CREDIT_CARD, PaymentMethod.DEBIT_CARD, PaymentMethod.PAYPAL)
    for _ in range(attack.size):
        method = rng.choice(methods).value
        pay = _payment(world, visit, method, world.new_id("pi-")[:15])
        target = world.mean_spend[victim] * rng.uniform(0.8, 2.5)
        basket = world.basket(victim, target, world.city[victim])
        _fraud_purchase(world, visit, basket, pay, attack, with_cart=True)
        yield world.now + rng.randint(10_000, 60_000)


ATTACKS: dict[FraudScenario, Callable[[World, Attack], Actor]] = {
    FraudScenario.CARD_TESTING: card_testing,
    FraudScenario.ACCOUNT_TAKEOVER: account_takeover,
    FraudScenario.IMPOSSIBLE_TRAVEL: impossible_travel,
    FraudScenario.AMOUNT_SPIKE: amount_spike,
    FraudScenario.ODD_HOURS: odd_hours,
    FraudScenario.MANY_INSTRUMENTS: many_instruments,
}


def start_delay(world: World, scenario: FraudScenario) -> int:
    """Milliseconds between deciding an attack and its first step (the fraudster's
    login): seconds, so that even a short run shows every scenario."""
    return world.rng.randint(1_000, 8_000)


# ---------------------------------------------------------------------- helpers


def _other_region(world: World, victim: int, city: int) -> bool:
    return CITIES[city].region != CITIES[world.city[victim]].region


def _stranger_visit(world: World, victim: int, city: int) -> Visit:
    """The fraudster's session: a device the victim never used, at ``city``."""
    device, channel = world.stranger_device()
    return Visit(
        session_id=world.new_id("s-"),
        customer=victim,
        user_id=None,
        device_id=device,
        channel=channel,
        city=city,
        ip=ip_in_city(city, world.rng.getrandbits(16)),
    )


def _payment(world: World, visit: Visit, method: str, instrument: str) -> Payment:
    return Payment(method, instrument, visit.device_id, visit.channel, visit.city, visit.ip)


def _own_payment(world: World, victim: int) -> Payment:
    method, instrument = world.instruments[victim][0]
    return Payment(
        method,
        instrument,
        world.devices[victim][0],
        world.device_channels[victim][0],
        world.city[victim],
        world.ips[victim],
    )


def hurry(world: World) -> int:
    """Milliseconds between a fraudster's clicks: they know what they came for."""
    return world.rng.randint(500, 2_500)


def _fraud_login(world: World, visit: Visit) -> Iterator[int]:
    world.user_event(visit, UserEventType.SESSION_START, "/")
    yield world.now + hurry(world)
    visit.user_id = world.customer_ids[visit.customer]
    world.user_event(visit, UserEventType.LOGIN, "/account/login")
    yield world.now + hurry(world)


def _fraud_checkout(
    world: World,
    visit: Visit,
    basket: list[tuple[int, int, float]],
    pay: Payment,
    attack: Attack,
) -> Iterator[int]:
    """A quick, purposeful checkout: straight to the product, the cart and the payment."""
    shop = world.shop
    product = basket[0][0]
    world.user_event(
        visit,
        UserEventType.PRODUCT_VIEW,
        f"/p/{shop.ids[product]}",
        product_id=shop.ids[product],
        category=shop.category[product],
        price=basket[0][2],
    )
    yield world.now + hurry(world)
    _fraud_purchase(world, visit, basket, pay, attack, with_cart=True)
    yield world.now + hurry(world)


def _fraud_purchase(
    world: World,
    visit: Visit,
    basket: list[tuple[int, int, float]],
    pay: Payment,
    attack: Attack,
    *,
    with_cart: bool,
) -> None:
    """Cart (optional), payment details and payment at once, then the label."""
    shop = world.shop
    if with_cart:
        for product, quantity, unit in basket:
            world.user_event(
                visit,
                UserEventType.ADD_TO_CART,
                "/cart",
                product_id=shop.ids[product],
                category=shop.category[product],
                price=unit,
                quantity=quantity,
            )
        value = round(sum(q * u for _, q, u in basket), 2)
        world.user_event(visit, UserEventType.BEGIN_CHECKOUT, "/checkout", cart_value=value)
    world.user_event(visit, UserEventType.ADD_PAYMENT_INFO, "/checkout/payment")
    tx_id, amount = world.transaction(attack.victim, visit.session_id, basket, pay)
    world.user_event(
        visit,
        UserEventType.COMPLETE_CHECKOUT,
        "/checkout/complete",
        cart_value=amount,
        transaction_id=tx_id,
    )
    world.fraud_label(tx_id, attack.victim, attack.scenario, attack.attack_id)
