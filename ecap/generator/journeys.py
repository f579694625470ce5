"""Browsing sessions: the funnel from landing to paying, with drop-off at every step.

A session is a generator over a :class:`~ecap.generator.world.World`: each step emits one
user event at ``world.now`` and yields when the next one happens (people read a page for
a few seconds to a minute). A completed checkout emits the transaction first, then the
``complete_checkout`` event carrying the same ``transaction_id``.

Legitimate sessions always come from the customer's home city, on one of their own
devices, paid with one of their own instruments, for an amount drawn around their own
spend level: that regularity is what lets a detector spot the fraud in ``fraud.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from ecap.events import CustomerSegment, ProductChange, TransactionType, UserEventType
from ecap.generator.population import CATEGORIES, ip_in_city
from ecap.generator.world import Actor, Payment, Visit, World

REFERRERS = (
    None,
    None,
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://mail.example.com/newsletter",
    "https://social.example.com/feed",
)

BUY_INTENT = {
    CustomerSegment.NEW.value: 0.25,
    CustomerSegment.RETURNING.value: 0.35,
    CustomerSegment.LOYAL.value: 0.45,
    CustomerSegment.POWER_USER.value: 0.55,
}
"""Chance that a known customer's session goes for a purchase, by segment."""

P_REMEMBERED = 0.5
"""Sessions where the customer is still logged in from before."""
P_LOGIN = 0.6
P_SEARCH = 0.45
P_WISHLIST = 0.06
P_REMOVE = 0.12
P_BEGIN_CHECKOUT = 0.8
P_PAYMENT_INFO = 0.9
P_COMPLETE = 0.92
P_REVIEW = 0.04
P_LOGOUT = 0.2
P_SIGNUP = 0.5
"""Chance that a prospect's session ends in a signup."""
P_REFUND = 0.03
"""Share of purchases refunded later."""
P_NEW_DEVICE = 0.02
"""Sessions of a known customer on a device they never used before (then theirs), at most
once per customer and run: the run compresses weeks of a heavy buyer's shopping into
hours, and a new phone every fifty sessions is not how people live."""
P_OTHER_NETWORK = 0.05
"""Sessions of a known customer from another address in their home city (mobile data, a
friend's wifi, a new line)."""
P_NEW_INSTRUMENT = 0.01
"""Purchases of a known customer with a card they never paid with before (then theirs),
at most once per customer and run, as for devices."""
SPEND_SHAPE = 6.0
"""Gamma shape of a customer's order values around their mean (coefficient of variation 0.41)."""

PurchaseHook = Callable[[World, int, str, float], None]
"""Called after every legitimate purchase: (world, customer, transaction id, amount)."""


def think(world: World) -> int:
    """Milliseconds until the next click: a median of 6 s, rarely more than half a minute."""
    return int(1000 * min(120.0, world.rng.lognormvariate(math.log(6.0), 0.6))) + 1


def customer_session(world: World, customer: int, on_purchase: PurchaseHook) -> Actor:
    """A signed-up customer browses, maybe buys, maybe reviews, maybe logs out."""
    rng = world.rng
    slots = len(world.devices[customer])
    if rng.random() < P_NEW_DEVICE and not world.took_up_device(customer):
        slot = world.new_device(customer)
    else:
        slot = 0 if slots == 1 or rng.random() < 0.7 else rng.randrange(slots)
    visit = world.visit(customer, slot)
    if rng.random() < P_OTHER_NETWORK:
        visit.ip = ip_in_city(visit.city, rng.getrandbits(16))
    if rng.random() < P_REMEMBERED:
        visit.user_id = world.customer_ids[customer]
    world.user_event(visit, UserEventType.SESSION_START, "/", referrer=rng.choice(REFERRERS))
    yield world.now + think(world)
    if visit.user_id is None and rng.random() < P_LOGIN:
        yield from _login(world, visit)
    yield from browse(world, visit, world.favourite[customer])
    if rng.random() < BUY_INTENT[world.segment[customer]]:
        target = rng.gammavariate(SPEND_SHAPE, world.mean_spend[customer] / SPEND_SHAPE)
        basket = world.basket(customer, target, visit.city)
        pay = world.usual_payment(customer, slot)
        pay.ip = visit.ip
        if rng.random() < P_NEW_INSTRUMENT and not world.took_up_instrument(customer):
            pay.method, pay.instrument_id = world.new_instrument(customer)
        yield from checkout(world, visit, basket, pay, on_purchase)
    if visit.user_id is not None and rng.random() < P_REVIEW:
        product = rng.randrange(len(world.shop))
        world.user_event(
            visit,
            UserEventType.PRODUCT_REVIEW,
            f"/p/{world.shop.ids[product]}/reviews",
            product_id=world.shop.ids[product],
            category=world.shop.category[product],
            rating=rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 4, 6))[0],
        )
        yield world.now + think(world)
    if visit.user_id is not None and rng.random() < P_LOGOUT:
        world.user_event(visit, UserEventType.LOGOUT, "/account/logout")


def prospect_session(world: World, customer: int, on_purchase: PurchaseHook) -> Actor:
    """A visitor who is not a customer yet browses and may sign up (then behaves as one)."""
    rng = world.rng
    visit = world.visit(customer, 0)
    world.user_event(visit, UserEventType.SESSION_START, "/", referrer=rng.choice(REFERRERS))
    yield world.now + think(world)
    yield from browse(world, visit, world.favourite[customer])
    if world.signed_up[customer]:  # signed up meanwhile, in another tab
        yield from _login(world, visit)
    elif rng.random() < P_SIGNUP and world.live:
        visit.user_id = world.customer_ids[customer]
        world.signed_up[customer] = True
        world.tally.signups += 1
        world.customer_profile(customer, world.now)
        world.user_event(visit, UserEventType.SIGNUP, "/account/signup")
        yield world.now + think(world)
    else:
        return
    if rng.random() < BUY_INTENT[world.segment[customer]]:
        target = rng.gammavariate(SPEND_SHAPE, world.mean_spend[customer] / SPEND_SHAPE)
        basket = world.basket(customer, target, visit.city)
        yield from checkout(world, visit, basket, world.usual_payment(customer, 0), on_purchase)


def anonymous_session(world: World, city: int) -> Actor:
    """Someone who never logs in: a few pages, sometimes a cart left behind."""
    rng = world.rng
    device, channel = world.stranger_device()
    visit = Visit(
        session_id=world.new_id("s-"),
        customer=-1,
        user_id=None,
        device_id=device,
        channel=channel,
        city=city,
        ip=ip_in_city(city, rng.getrandbits(16)),
    )
    world.user_event(visit, UserEventType.SESSION_START, "/", referrer=rng.choice(REFERRERS))
    yield world.now + think(world)
    yield from browse(world, visit, rng.randrange(len(CATEGORIES)))
    if rng.random() < 0.15:
        product = rng.randrange(len(world.shop))
        _cart_add(world, visit, product, 1, world.local_amount(world.shop.price[product], city))


def browse(world: World, visit: Visit, category: int) -> Iterator[int]:
    """Pages, maybe a search, then a few product pages (some wished for)."""
    rng = world.rng
    shop = world.shop
    name = CATEGORIES[category].name
    for _ in range(rng.choice((0, 1, 1, 2))):
        world.user_event(visit, UserEventType.PAGE_VIEW, f"/c/{name}")
        yield world.now + think(world)
    if rng.random() < P_SEARCH:
        query = rng.choice(CATEGORIES[category].nouns)
        world.user_event(
            visit, UserEventType.SEARCH, f"/search?q={query.replace(' ', '+')}", search_query=query
        )
        yield world.now + think(world)
    pool = shop.by_category[category] or range(len(shop))
    for _ in range(1 + min(5, int(rng.expovariate(0.6)))):
        product = rng.choice(pool) if rng.random() < 0.7 else rng.randrange(len(shop))
        local = world.local_amount(shop.price[product], visit.city)
        world.user_event(
            visit,
            UserEventType.PRODUCT_VIEW,
            f"/p/{shop.ids[product]}",
            product_id=shop.ids[product],
            category=shop.category[product],
            price=local,
        )
        yield world.now + think(world)
        if rng.random() < P_WISHLIST:
            world.user_event(
                visit,
                UserEventType.ADD_TO_WISHLIST,
                f"/p/{shop.ids[product]}",
                product_id=shop.ids[product],
                category=shop.category[product],
                price=local,
            )
            yield world.now + think(world)


def checkout(
    world: World,
    visit: Visit,
    basket: list[tuple[int, int, float]],
    pay: Payment,
    on_purchase: PurchaseHook,
) -> Iterator[int]:
    """Cart, checkout, payment details, payment: each step may be the last."""
    rng = world.rng
    customer = visit.customer
    for product, quantity, unit in basket:
        _cart_add(world, visit, product, quantity, unit)
        yield world.now + think(world)
    if rng.random() < P_REMOVE:
        extra = rng.randrange(len(world.shop))
        unit = world.local_amount(world.shop.price[extra], visit.city)
        _cart_add(world, visit, extra, 1, unit)
        yield world.now + think(world)
        world.user_event(
            visit,
            UserEventType.REMOVE_FROM_CART,
            "/cart",
            product_id=world.shop.ids[extra],
            category=world.shop.category[extra],
            price=unit,
            quantity=1,
        )
        yield world.now + think(world)
    cart_value = round(sum(q * u for _, q, u in basket), 2)
    if rng.random() >= P_BEGIN_CHECKOUT or world.blocked_until[customer] > world.now:
        return
    if visit.user_id is None:
        yield from _login(world, visit)
    world.user_event(visit, UserEventType.BEGIN_CHECKOUT, "/checkout", cart_value=cart_value)
    yield world.now + think(world)
    if rng.random() >= P_PAYMENT_INFO:
        return
    world.user_event(
        visit, UserEventType.ADD_PAYMENT_INFO, "/checkout/payment", cart_value=cart_value
    )
    yield world.now + think(world)
    if rng.random() >= P_COMPLETE or world.blocked_until[customer] > world.now:
        return
    tx_id, amount = world.transaction(customer, visit.session_id, basket, pay)
    world.user_event(
        visit,
        UserEventType.COMPLETE_CHECKOUT,
        "/checkout/complete",
        cart_value=amount,
        transaction_id=tx_id,
    )
    if not world.live:
        return
    world.tally.purchases += 1
    on_purchase(world, customer, tx_id, amount)
    if rng.random() < P_REFUND:
        delay = int(60_000 * max(10.0, rng.lognormvariate(math.log(120.0), 1.0)))
        world.schedule(world.now + delay, refund(world, customer, tx_id, basket, pay))
    yield world.now + think(world)


def refund(
    world: World,
    customer: int,
    original: str,
    basket: list[tuple[int, int, float]],
    pay: Payment,
) -> Actor:
    """A refund of a whole order (mostly) or of one of its lines, to the same instrument."""
    rng = world.rng
    lines = basket if len(basket) == 1 or rng.random() < 0.75 else [rng.choice(basket)]
    world.transaction(customer, None, lines, pay, kind=TransactionType.REFUND, original=original)
    world.tally.refunds += 1
    return
    yield  # makes this a one-step actor: it acts when the engine first resumes it


def product_change(world: World) -> None:
    """A price change (up to 15% either way, never below cost) or a restock."""
    rng = world.rng
    shop = world.shop
    product = rng.randrange(len(shop))
    if rng.random() < 0.5:
        price = shop.price[product] * rng.uniform(0.85, 1.15)
        floor = shop.cost[product] * 1.05
        shop.set_price(product, round(max(price, floor, 0.5), 2))
        world.product_update(product, ProductChange.PRICE_CHANGED)
    else:
        shop.stock[product] = rng.randrange(0, 500)
        world.product_update(product, ProductChange.STOCK_CHANGED)


def _login(world: World, visit: Visit) -> Iterator[int]:
    visit.user_id = world.customer_ids[visit.customer]
    world.user_event(visit, UserEventType.LOGIN, "/account/login")
    yield world.now + think(world)


def _cart_add(world: World, visit: Visit, product: int, quantity: int, unit: float) -> None:
    world.user_event(
        visit,
        UserEventType.ADD_TO_CART,
        "/cart",
        product_id=world.shop.ids[product],
        category=world.shop.category[product],
        price=unit,
        quantity=quantity,
    )
