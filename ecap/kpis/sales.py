"""Sales KPIs from ``transactions``: what one batch adds, and what the ledger answers.

Definitions (all amounts in euro cents, see :mod:`ecap.kpis.money`):

* ``revenue``: purchases' amounts; by category, the converted sum of the category's lines;
* ``orders``: purchases (by category: purchases with a line in it);
* ``units``: quantities of the purchased lines;
* ``aov``: revenue / orders;
* ``unique_customers``: distinct users with a purchase (exact sets; users are the
  ``transactions`` key, so the partitions never share one, and the sets are united anyway);
* ``refunds`` and ``refund_amount``: refund transactions and their amounts;
* ``unconverted_orders`` and ``unconverted_refunds``: transactions in a currency without a
  rate (:data:`ecap.currency.NO_RATE`). They count in ``orders`` (or ``refunds``),
  ``units`` and ``unique_customers``, but their amounts cannot be in euros: ``revenue``
  and ``refund_amount`` leave them out, and ``aov`` is revenue / (orders - unconverted
  orders).

Each is kept for ``all`` and by ``category``, ``region`` (of the transaction's location)
and ``payment_method``, per minute slice, and published per ``tumbling_1m`` and
``hopping_1h`` window.

**One count per transaction id.** Every counted id goes into its minute's
:data:`TRANSACTIONS` set, so a second record with the same ``transaction_id`` (sent again,
or under another user, on another partition) is not counted while that minute is kept:
:data:`~ecap.kpis.windows.RETAIN_MS` of event time behind the watermark, the bound of the
ledger's state. The copy is looked for in the minute of its own event time. Two copies
counted by two worker processes within the time a delta takes to reach the other worker
(a batch and a ledger fetch) both count; one process checks its whole batch.
"""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum
from typing import Any

from ecap.events import Transaction, TransactionType, WindowKind
from ecap.kpis.ledger import Cell, Delta, Ledger
from ecap.kpis.money import to_eur_cents, units
from ecap.kpis.windows import Window, hopping, minute_of, tumbling

KINDS = (WindowKind.TUMBLING_1M, WindowKind.HOPPING_1H)
DIMENSIONS = ("category", "region", "payment_method")
ALL = ("all", "all")
METRICS = (
    "revenue",
    "orders",
    "units",
    "aov",
    "unique_customers",
    "refunds",
    "refund_amount",
    "unconverted_orders",
    "unconverted_refunds",
)
MONEY = frozenset({"revenue", "aov", "refund_amount"})
"""Metrics published in euros (the ledger keeps cents)."""
CUSTOMERS = "customers"
TRANSACTIONS = "transactions"
"""The set of transaction ids counted in a minute (never published)."""
_COUNTED = (TRANSACTIONS, "all", "all")


class Outcome(StrEnum):
    """What :func:`add` did with a transaction."""

    COUNTED = "counted"
    UNCONVERTED = "unconverted"
    """Counted, but its currency has no rate: its amount is in no euro total."""
    DUPLICATE = "duplicate"
    """Its transaction id is counted already: not counted again."""
    EXPIRED = "expired"
    """Older than the kept minute slices (counted in ``delta.expired``)."""


def new_ledger(partitions: int) -> Ledger:
    return Ledger(partitions, KINDS)


def event_ms(tx: Transaction) -> int:
    return int(tx.event_time.timestamp() * 1000)


def add(
    delta: Delta, ledger: Ledger, tx: Transaction, *, counted_elsewhere: bool = False
) -> Outcome:
    """Count one valid transaction into ``delta``, once per transaction id.

    ``counted_elsewhere``: the caller saw the id counted in another delta it has not
    folded into ``ledger`` yet (another partition of the same batch).
    """
    currency = tx.currency
    total = to_eur_cents(units(tx.amount, currency), currency)
    by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in tx.items:
        entry = by_category[line.category]
        entry[0] += line.quantity * units(line.unit_price, currency)
        entry[1] += line.quantity
    at = event_ms(tx)
    minute = minute_of(at)
    tx_id = tx.transaction_id
    in_delta = delta.members.get((minute, *_COUNTED))
    if (
        counted_elsewhere
        or (in_delta is not None and tx_id in in_delta)
        or ledger.has_member(minute, _COUNTED, tx_id)
    ):
        return Outcome.DUPLICATE
    if not ledger.admit(delta, at):
        return Outcome.EXPIRED
    delta.members[(minute, *_COUNTED)].add(tx_id)
    increments = delta.add
    dims = [ALL, ("region", tx.location.region), ("payment_method", tx.payment_method.value)]
    purchase = tx.type is TransactionType.PURCHASE
    count, amount = ("orders", "revenue") if purchase else ("refunds", "refund_amount")
    unconverted = "unconverted_orders" if purchase else "unconverted_refunds"
    quantity = sum(line.quantity for line in tx.items)
    for dim, value in dims:
        increments[(minute, count, dim, value)] += 1
        if total is None:
            increments[(minute, unconverted, dim, value)] += 1
        else:
            increments[(minute, amount, dim, value)] += total
        if purchase:
            increments[(minute, "units", dim, value)] += quantity
            _member(delta, ledger, minute, dim, value, tx.user_id)
    for category, (line_units, line_quantity) in by_category.items():
        increments[(minute, count, "category", category)] += 1
        category_cents = to_eur_cents(line_units, currency)
        if category_cents is None:
            increments[(minute, unconverted, "category", category)] += 1
        else:
            increments[(minute, amount, "category", category)] += category_cents
        if purchase:
            increments[(minute, "units", "category", category)] += line_quantity
            _member(delta, ledger, minute, "category", category, tx.user_id)
    return Outcome.COUNTED if total is not None else Outcome.UNCONVERTED


def _member(delta: Delta, ledger: Ledger, minute: int, dim: str, value: str, user: str) -> None:
    if not ledger.has_member(minute, (CUSTOMERS, dim, value), user):
        delta.members[(minute, CUSTOMERS, dim, value)].add(user)


# ---------------------------------------------------------------------- answers


def values(
    cells: dict[Cell, int], unions: dict[Cell, set[str]], dim: str
) -> dict[str, dict[str, Any]]:
    """Every metric per value of ``dim``, money in euros: ``{value: {metric: number}}``."""
    out: dict[str, dict[str, Any]] = {}
    for (metric, d, value), n in cells.items():
        if d == dim:
            out.setdefault(value, {})[metric] = n
    for (name, d, value), members in unions.items():
        if name == CUSTOMERS and d == dim:
            out.setdefault(value, {})["unique_customers"] = len(members)
    return {value: _finish(raw) for value, raw in sorted(out.items())}


def _finish(raw: dict[str, int]) -> dict[str, Any]:
    revenue = raw.get("revenue", 0)
    orders = raw.get("orders", 0)
    unconverted = raw.get("unconverted_orders", 0)
    priced = orders - unconverted
    return {
        "revenue": revenue / 100,
        "orders": orders,
        "units": raw.get("units", 0),
        "aov": round(revenue / priced / 100, 2) if priced else None,
        "unique_customers": raw.get("unique_customers", 0),
        "refunds": raw.get("refunds", 0),
        "refund_amount": raw.get("refund_amount", 0) / 100,
        "unconverted_orders": unconverted,
        "unconverted_refunds": raw.get("unconverted_refunds", 0),
    }


def _customer_unions(ledger: Ledger, window: Window) -> dict[Cell, set[str]]:
    """The customer sets united over ``window`` (the transaction-id sets, much larger, are
    only looked up, never united)."""
    out: dict[Cell, set[str]] = defaultdict(set)
    for minute in window.minutes():
        for cell, members in ledger.sets.get(minute, {}).items():
            if cell[0] == CUSTOMERS:
                out[cell] |= members
    return out


def window_values(ledger: Ledger, window: Window) -> dict[str, dict[str, dict[str, Any]]]:
    """``{dimension: {value: {metric: number}}}`` for one window."""
    cells, unions = ledger.cells(window), _customer_unions(ledger, window)
    return {dim: values(cells, unions, dim) for dim in ("all", *DIMENSIONS)}


_PUBLISHED_IF_ANY = frozenset({"unconverted_orders", "unconverted_refunds"})
"""Published only when not zero (they are zero unless a currency has no rate)."""


def results(ledger: Ledger, window: Window) -> list[tuple[str, str, str, float]]:
    """(metric, dimension, value, number) for every KPI of a window, for publishing."""
    out = []
    for dim, by_value in window_values(ledger, window).items():
        for value, metrics in by_value.items():
            for metric in METRICS:
                number = metrics[metric]
                if number is None or (not number and metric in _PUBLISHED_IF_ANY):
                    continue
                out.append((metric, dim, value, float(number)))
    return out


def describe(window: Window, closed: bool) -> dict[str, Any]:
    return {
        "window": window.kind.value,
        "start": window.start_ms,
        "end": window.end_ms,
        "final": closed,
    }


def current(ledger: Ledger) -> dict[str, Any]:
    """The ``/kpis/current`` answer: the latest minute (every dimension) and the last hour
    (all): the hopping hour holding that minute that started first."""
    minute = ledger.current_minute()
    if minute is None:
        return {"minute": None, "hour": None}
    this_minute = tumbling(minute)
    hour = hopping(minute)[0]
    hour_values = window_values(ledger, hour)["all"].get("all", _finish({}))
    return {
        "minute": {
            **describe(this_minute, ledger.clock.is_closed(this_minute)),
            "late_events": ledger.late.get(this_minute, 0),
            **window_values(ledger, this_minute),
        },
        "hour": {
            **describe(hour, ledger.clock.is_closed(hour)),
            "late_events": ledger.late.get(hour, 0),
            "all": hour_values,
        },
    }


def timeseries(ledger: Ledger, metric: str, kind: WindowKind, dim: str) -> list[dict[str, Any]]:
    """``metric`` per window of ``kind`` (every kept window), per value of ``dim``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if kind not in KINDS:
        raise ValueError(
            f"sales KPIs have no {kind.value} windows; use {' or '.join(k.value for k in KINDS)}"
        )
    if dim not in ("all", *DIMENSIONS):
        raise ValueError(f"unknown dimension {dim!r}; choose all, {', '.join(DIMENSIONS)}")
    series = []
    for window in sorted(w for w in ledger.windows() if w.kind is kind):
        by_value = window_values(ledger, window)[dim]
        series.append(
            {
                **describe(window, ledger.clock.is_closed(window)),
                "late_events": ledger.late.get(window, 0),
                "values": {value: m[metric] for value, m in by_value.items()},
            }
        )
    return series
