"""The KPIs of a generated stream computed offline, the plain way, to check the workers.

Written from the definitions in ``docs/api-live.md`` without the worker's code: decimal
arithmetic for money, whole sessions in memory for the funnel, Python sets for distinct
counts. Keys are ``(window start ms, dimension, dimension value)``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from ecap.currency import FX_PER_USD
from ecap.events import Transaction, UserEvent, decode
from ecap.generator.wire import Record
from ecap.topics import TRANSACTIONS, USER_EVENTS

MINUTE = 60_000
STEPS = ("page_view", "product_view", "add_to_cart", "begin_checkout", "complete_checkout")

Key = tuple[int, str, str]


def eur_cents(amount: Decimal, currency: str) -> int:
    rate = Decimal(str(FX_PER_USD["EUR"])) / Decimal(str(FX_PER_USD[currency]))
    return int((amount * 100 * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def money(value: float) -> Decimal:
    return Decimal(str(value))


@dataclass
class Sales:
    revenue: int = 0
    orders: int = 0
    units: int = 0
    refunds: int = 0
    refund_amount: int = 0
    customers: set[str] = field(default_factory=set)


@dataclass
class Expected:
    sales: dict[Key, Sales] = field(default_factory=lambda: defaultdict(Sales))
    """Per minute start."""
    clicks: dict[Key, int] = field(default_factory=lambda: defaultdict(int))
    """(minute start, metric, value) -> count: events, sessions_started, funnel steps."""
    users: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    sessions: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    funnel_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    transactions: list[Transaction] = field(default_factory=list)

    def sales_between(self, start: int, end: int, dim: str) -> dict[str, Sales]:
        """Sales summed over the minutes in [start, end) by value of ``dim``."""
        out: dict[str, Sales] = defaultdict(Sales)
        for (minute, d, value), s in self.sales.items():
            if d == dim and start <= minute < end:
                total = out[value]
                total.revenue += s.revenue
                total.orders += s.orders
                total.units += s.units
                total.refunds += s.refunds
                total.refund_amount += s.refund_amount
                total.customers |= s.customers
        return out

    def distinct_between(self, start: int, end: int) -> tuple[int, int]:
        sessions: set[str] = set()
        users: set[str] = set()
        for minute in range(start, end, MINUTE):
            sessions |= self.sessions.get(minute, set())
            users |= self.users.get(minute, set())
        return len(sessions), len(users)

    def minutes(self, topic: str) -> set[int]:
        if topic == TRANSACTIONS:
            return {key[0] for key in self.sales}
        return set(self.sessions)


def compute(records: list[Record]) -> Expected:
    expected = Expected()
    deepest: dict[str, int] = {}
    for record in records:
        if record.topic == TRANSACTIONS:
            _sale(expected, decode(Transaction, record.value))
        elif record.topic == USER_EVENTS:
            _click(expected, decode(UserEvent, record.value), deepest)
    return expected


def _sale(expected: Expected, tx: Transaction) -> None:
    expected.transactions.append(tx)
    minute = int(tx.event_time.timestamp() * 1000) // MINUTE * MINUTE
    total = eur_cents(money(tx.amount), tx.currency)
    categories: dict[str, list[Decimal | int]] = {}
    for line in tx.items:
        entry = categories.setdefault(line.category, [Decimal(0), 0])
        entry[0] = Decimal(entry[0]) + money(line.unit_price) * line.quantity
        entry[1] = int(entry[1]) + line.quantity
    rows = [
        ("all", "all", total, sum(line.quantity for line in tx.items)),
        ("region", tx.location.region, total, sum(line.quantity for line in tx.items)),
        ("payment_method", tx.payment_method.value, total, sum(li.quantity for li in tx.items)),
    ] + [
        ("category", c, eur_cents(Decimal(v[0]), tx.currency), int(v[1]))
        for c, v in categories.items()
    ]
    for dim, value, cents, units in rows:
        s = expected.sales[(minute, dim, value)]
        if tx.type.value == "purchase":
            s.revenue += cents
            s.orders += 1
            s.units += units
            s.customers.add(tx.user_id)
        else:
            s.refunds += 1
            s.refund_amount += cents


def _click(expected: Expected, event: UserEvent, deepest: dict[str, int]) -> None:
    minute = int(event.event_time.timestamp() * 1000) // MINUTE * MINUTE
    kind = event.event_type.value
    expected.clicks[(minute, "events", "all")] += 1
    expected.clicks[(minute, "events", kind)] += 1
    session = event.session_id
    if session not in deepest:
        deepest[session] = 0
        expected.clicks[(minute, "sessions_started", "all")] += 1
    expected.sessions[minute].add(session)
    if event.user_id is not None:
        expected.users[minute].add(event.user_id)
    if kind in STEPS:
        step = STEPS.index(kind) + 1
        for reached in STEPS[deepest[session] : step]:
            expected.clicks[(minute, "funnel_sessions", reached)] += 1
            expected.funnel_total[reached] += 1
        deepest[session] = max(deepest[session], step)
