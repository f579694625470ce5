"""The stable population a seed describes: customers, products and merchants.

Everything here is drawn with numpy from one seed, attribute by attribute from its own
child stream, so an attribute does not change when another one is added or when more
customers are asked for: customer ``i`` of a 1,000-customer population is customer ``i``
of a 10,000-customer one. The stream and the history generators both build on it, so an
order history and a live stream with the same seed tell the story of the same people
(same homes, devices, payment instruments and spend levels).

Customers follow the BG/NBD and Gamma-Gamma story: a purchase rate (gamma distributed),
a probability to drop out after each purchase (beta distributed) and a spend level
(gamma-gamma). Their segment is derived from those and from their tenure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from ecap.events import Channel, CustomerSegment, PaymentMethod
from ecap.generator.calendar import HOUR_WEIGHTS, day_factors
from ecap.generator.geography import CITIES, REGIONS

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Category:
    name: str
    low_usd: float
    high_usd: float
    margin: float
    weight: float
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("electronics", 20, 800, 0.18, 10, ("headphones", "speaker", "camera", "monitor")),
    Category("computers", 25, 2200, 0.12, 6, ("laptop", "tablet", "keyboard", "ssd")),
    Category("phones", 15, 1300, 0.15, 7, ("smartphone", "phone case", "smartwatch")),
    Category("home_kitchen", 12, 400, 0.35, 10, ("blender", "coffee maker", "pan set", "lamp")),
    Category("fashion", 12, 250, 0.55, 12, ("jacket", "dress", "jeans", "sweater")),
    Category("shoes", 25, 260, 0.5, 6, ("sneakers", "boots", "sandals", "running shoes")),
    Category("beauty", 6, 150, 0.6, 7, ("serum", "perfume", "lipstick", "shampoo")),
    Category("books", 6, 60, 0.3, 6, ("novel", "cookbook", "biography", "comic")),
    Category("toys", 8, 150, 0.4, 5, ("puzzle", "building set", "doll", "board game")),
    Category("sports", 10, 600, 0.38, 6, ("yoga mat", "dumbbells", "tent", "bike helmet")),
    Category("grocery", 5, 60, 0.25, 6, ("coffee beans", "olive oil", "tea", "chocolate")),
    Category("garden", 10, 700, 0.35, 4, ("hose", "planter", "grill", "lawn mower")),
    Category("jewelry", 30, 2500, 0.6, 3, ("ring", "necklace", "watch", "bracelet")),
    Category("automotive", 10, 300, 0.3, 3, ("dash cam", "car charger", "floor mats")),
    Category("digital", 0.99, 29.99, 0.8, 4, ("e-book", "app credit", "sticker pack")),
)

ADJECTIVES = ("classic", "smart", "compact", "premium", "eco", "pro", "mini", "urban", "soft")

SEGMENTS: tuple[CustomerSegment, ...] = tuple(CustomerSegment)
_SEG = {segment: code for code, segment in enumerate(SEGMENTS)}

METHODS: tuple[PaymentMethod, ...] = tuple(PaymentMethod)
_METHOD_WEIGHTS = {
    # credit, debit, paypal, apple_pay, google_pay, bank_transfer, gift_card
    "NA": (0.45, 0.2, 0.15, 0.12, 0.05, 0.0, 0.03),
    "EMEA": (0.25, 0.3, 0.25, 0.1, 0.05, 0.05, 0.0),
    "APAC": (0.35, 0.12, 0.1, 0.15, 0.12, 0.14, 0.02),
    "LATAM": (0.5, 0.2, 0.1, 0.0, 0.05, 0.15, 0.0),
}
CHANNELS: tuple[Channel, ...] = (Channel.WEB, Channel.APP)
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "gmx.net")

PURCHASE_SHAPE, PURCHASE_RATE = 2.0, 40.0
"""BG/NBD purchase rate per day: gamma(r, 1/alpha); a mean of one order every 20 days."""
DROPOUT_A, DROPOUT_B = 1.2, 3.0
"""BG/NBD dropout probability after each repeat purchase: beta(a, b), a mean of 0.29."""
SPEND_P, SPEND_Q, SPEND_GAMMA = 6.0, 4.0, 35.0
"""Gamma-Gamma spend: order value gamma(p, nu), nu gamma(q, gamma); mean about $70."""
POWER_USER_RATE = 0.12
"""Customers buying more often than every ~8 days are power users."""
ACQUISITION_GROWTH = 1.0
"""The business grows: acquisitions at the end of a window are e times those at its start."""


def id_tag(seed: int) -> str:
    """A short tag derived from the seed, so populations of different seeds share no ids."""
    return hashlib.blake2b(str(seed).encode(), digest_size=2).hexdigest()


@dataclass(frozen=True)
class Catalogue:
    """Products (by index) and the merchants selling them. Prices are in US dollars."""

    tag: str
    category: np.ndarray
    price_usd: np.ndarray
    cost_usd: np.ndarray
    merchant: np.ndarray
    stock: np.ndarray
    name: tuple[str, ...]
    n_merchants: int

    def __len__(self) -> int:
        return len(self.category)

    def product_id(self, index: int) -> str:
        return f"p-{self.tag}-{index:05d}"

    def merchant_id(self, index: int) -> str:
        return f"m-{self.tag}-{index:03d}"


@dataclass(frozen=True)
class Population:
    """Per-customer attributes as arrays indexed by customer number.

    The first ``n_customers`` are signed-up customers at the anchor; the ``n_prospects``
    after them are visitors who sign up during a stream (``signup_ms`` is -1 for them).
    """

    seed: int
    tag: str
    anchor_ms: int
    n_customers: int
    n_prospects: int
    city: np.ndarray
    segment: np.ndarray
    signup_ms: np.ndarray
    purchase_rate: np.ndarray
    dropout: np.ndarray
    mean_spend_usd: np.ndarray
    peak_hour: np.ndarray
    favourite_category: np.ndarray
    device_count: np.ndarray
    device_key: np.ndarray
    device_channel: np.ndarray
    instrument_count: np.ndarray
    instrument_key: np.ndarray
    instrument_method: np.ndarray
    ip_key: np.ndarray
    email_domain: np.ndarray
    marketing_opt_in: np.ndarray
    catalogue: Catalogue

    @property
    def size(self) -> int:
        return self.n_customers + self.n_prospects

    def customer_id(self, index: int) -> str:
        return f"c-{self.tag}-{index:07d}"

    def device_id(self, index: int, slot: int) -> str:
        return f"d-{int(self.device_key[index, slot]):012x}"

    def instrument_id(self, index: int, slot: int) -> str:
        return f"pi-{int(self.instrument_key[index, slot]):012x}"

    def ip_address(self, index: int) -> str:
        return ip_in_city(int(self.city[index]), int(self.ip_key[index]))

    def hour_profile(self) -> np.ndarray:
        """Each customer's relative activity by local hour (rows: customers, 24 columns)."""
        return hour_profile(self.peak_hour)


def hour_profile(peak_hour: np.ndarray) -> np.ndarray:
    """Relative activity by local hour for people whose activity peaks at ``peak_hour``.

    The shop-wide curve shaped by a personal peak: people shop at their usual hours.
    """
    hours = np.arange(24)
    gap = np.abs(hours[None, :] - peak_hour[:, None])
    gap = np.minimum(gap, 24 - gap)
    personal = 0.3 + np.exp(-(gap**2) / (2 * 3.0**2))
    weights: np.ndarray = HOUR_WEIGHTS[None, :] * personal
    return weights


def ip_in_city(city: int, key: int) -> str:
    """A stable IPv4 address in a /16 block that stands for the city."""
    return f"{31 + (city * 7) % 190}.{(city * 37) % 250 + 1}.{key >> 8 & 255}.{key & 255 or 1}"


def build(
    n_customers: int,
    seed: int,
    anchor: datetime,
    *,
    n_prospects: int = 0,
    acquisition_days: int = 730,
    n_products: int | None = None,
) -> Population:
    """Draw the population of a seed, with signups spread over the days before ``anchor``."""
    if n_customers < 1:
        raise ValueError("a population needs at least one customer")
    size = n_customers + n_prospects
    anchor_ms = int(anchor.timestamp() * 1000)
    streams = _streams(seed)
    weights = np.array([c.weight for c in CITIES])
    city = streams[0].choice(len(CITIES), size=size, p=weights / weights.sum())

    purchase_rate = streams[1].gamma(PURCHASE_SHAPE, 1 / PURCHASE_RATE, size=size)
    dropout = streams[2].beta(DROPOUT_A, DROPOUT_B, size=size)
    nu = streams[3].gamma(SPEND_Q, 1 / SPEND_GAMMA, size=size)
    mean_spend = np.clip(SPEND_P / nu, 5.0, 600.0)

    signup_ms = _signups(streams[4:7], size, city, anchor, acquisition_days)
    signup_ms[n_customers:] = -1
    segment = _segments(signup_ms, anchor_ms, purchase_rate, dropout)

    peak_hour = streams[7].uniform(9.0, 22.5, size=size)
    cat_weights = np.array([c.weight for c in CATEGORIES])
    favourite = streams[8].choice(len(CATEGORIES), size=size, p=cat_weights / cat_weights.sum())

    device_count = streams[9].choice([1, 2, 3], size=size, p=[0.5, 0.35, 0.15])
    device_key = streams[10].integers(0, 2**48, size=(size, 3), dtype=np.int64)
    device_channel = (streams[11].random((size, 3)) < 0.45).astype(np.int8)
    instrument_count = streams[12].choice([1, 2, 3], size=size, p=[0.55, 0.33, 0.12])
    instrument_key = streams[13].integers(0, 2**48, size=(size, 3), dtype=np.int64)
    instrument_method = _methods(streams[14].random((size, 3)), city)
    ip_key = streams[15].integers(0, 2**16, size=size)
    email = streams[16].choice(len(EMAIL_DOMAINS), size=size, p=[0.45, 0.2, 0.12, 0.12, 0.05, 0.06])
    opt_in = streams[17].random(size) < 0.45

    products = n_products if n_products is not None else default_products(n_customers)
    tag = id_tag(seed)
    return Population(
        seed=seed,
        tag=tag,
        anchor_ms=anchor_ms,
        n_customers=n_customers,
        n_prospects=n_prospects,
        city=city,
        segment=segment,
        signup_ms=signup_ms,
        purchase_rate=purchase_rate,
        dropout=dropout,
        mean_spend_usd=mean_spend,
        peak_hour=peak_hour,
        favourite_category=favourite,
        device_count=device_count,
        device_key=device_key,
        device_channel=device_channel,
        instrument_count=instrument_count,
        instrument_key=instrument_key,
        instrument_method=instrument_method,
        ip_key=ip_key,
        email_domain=email,
        marketing_opt_in=opt_in,
        catalogue=build_catalogue(products, streams[18], tag),
    )


def default_products(n_customers: int) -> int:
    """Catalogue size for a population: a quarter of the customers, within 100-2,000."""
    return int(min(2000, max(100, n_customers // 4)))


def _streams(seed: int) -> list[np.random.Generator]:
    """One independent random stream per attribute (see the module docstring)."""
    return [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(19)]


def _signups(
    rngs: list[np.random.Generator], size: int, city: np.ndarray, anchor: datetime, days: int
) -> np.ndarray:
    """Signup times: more recent ones as the business grows, more around the holidays."""
    first = (anchor - timedelta(days=days)).date()
    growth = np.exp(ACQUISITION_GROWTH * np.arange(days) / max(days, 1))
    daily = growth * day_factors(first, days)
    day = rngs[0].choice(days, size=size, p=daily / daily.sum())
    hour = rngs[1].choice(24, size=size, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    within = rngs[2].random(size)
    offsets = np.array([c.utc_offset for c in CITIES])[city]
    first_ms = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp() * 1000)
    local = day * DAY_MS + (hour + within) * HOUR_MS
    utc = (first_ms + local - offsets * HOUR_MS).astype(np.int64)
    end_ms = int(anchor.timestamp() * 1000)
    # the grid is whole local days: fold the bits outside the window back in by a day
    utc = np.where(utc < end_ms - days * DAY_MS, utc + DAY_MS, utc)
    utc = np.where(utc >= end_ms, utc - DAY_MS, utc)
    return np.clip(utc, end_ms - days * DAY_MS, end_ms - 1)


def _segments(
    signup_ms: np.ndarray, anchor_ms: int, purchase_rate: np.ndarray, dropout: np.ndarray
) -> np.ndarray:
    tenure_days = (anchor_ms - signup_ms) / DAY_MS
    segment = np.full(len(signup_ms), _SEG[CustomerSegment.RETURNING], dtype=np.int8)
    segment[(tenure_days > 365) & (dropout < 0.12)] = _SEG[CustomerSegment.LOYAL]
    segment[purchase_rate >= POWER_USER_RATE] = _SEG[CustomerSegment.POWER_USER]
    segment[(tenure_days < 30) | (signup_ms < 0)] = _SEG[CustomerSegment.NEW]
    return segment


def _methods(draws: np.ndarray, city: np.ndarray) -> np.ndarray:
    region_of_city = np.array([REGIONS.index(c.region) for c in CITIES])
    cumulative = np.array([np.cumsum(_METHOD_WEIGHTS[r]) for r in REGIONS])
    cumulative[:, -1] = 1.0
    per_customer = cumulative[region_of_city[city]]
    methods: np.ndarray = (draws[:, :, None] >= per_customer[:, None, :]).sum(axis=2)
    return methods.astype(np.int8)


def build_catalogue(n_products: int, rng: np.random.Generator, tag: str) -> Catalogue:
    """Products with a category, a price ending in .99, a cost below it and a merchant."""
    weights = np.array([c.weight for c in CATEGORIES])
    category = rng.choice(len(CATEGORIES), size=n_products, p=weights / weights.sum())
    category[: len(CATEGORIES)] = np.arange(min(n_products, len(CATEGORIES)))
    low = np.array([c.low_usd for c in CATEGORIES])[category]
    high = np.array([c.high_usd for c in CATEGORIES])[category]
    raw = np.exp(rng.uniform(np.log(low), np.log(high)))
    price = np.where(raw >= 2, np.round(raw) - 0.01, np.round(raw, 2))
    margin = np.array([c.margin for c in CATEGORIES])[category] * rng.uniform(0.7, 1.3, n_products)
    cost = np.round(price * (1 - np.clip(margin, 0.05, 0.9)), 2)
    n_merchants = max(10, n_products // 10)
    merchant = rng.integers(0, n_merchants, size=n_products)
    stock = rng.integers(5, 500, size=n_products)
    adjective = rng.integers(0, len(ADJECTIVES), size=n_products)
    noun = rng.integers(0, 100, size=n_products)
    names = tuple(
        f"{ADJECTIVES[a].title()} {CATEGORIES[c].nouns[n % len(CATEGORIES[c].nouns)]}"
        for a, c, n in zip(adjective.tolist(), category.tolist(), noun.tolist(), strict=True)
    )
    return Catalogue(
        tag=tag,
        category=category,
        price_usd=price,
        cost_usd=cost,
        merchant=merchant,
        stock=stock,
        name=names,
        n_merchants=n_merchants,
    )
