"""Sales KPIs from ``transactions``: what one batch adds, and what the ledger answers.

Definitions (all amounts in euro cents, see :mod:`ecap.kpis.money`):

* ``revenue``: purchases' amounts; by category, the converted sum of the category's lines;
* ``orders``: purchases (by category: purchases with a line in it);
* ``units``: quantities of the purchased lines;
* ``aov``: revenue / orders;
* ``unique_customers``: distinct users with a purchase (exact sets; users are the
  ``transactions`` key, so the partitions never share one, and the sets are united anyway);
* ``refunds`` and ``refund_amount``: refund transactions and their amounts.

Each is kept for ``all`` and by ``category``, ``region`` (of the transaction's location)
and ``payment_method``, per minute slice, and published per ``tumbling_1m`` and
``hopping_1h`` window.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ecap.events import Transaction, TransactionType, WindowKind
from ecap.kpis.ledger import Cell, Delta, Ledger
from ecap.kpis.money import cents, to_eur_cents
from ecap.kpis.windows import Window, hopping, minute_of, tumbling

KINDS = (WindowKind.TUMBLING_1M, WindowKind.HOPPING_1H)
DIMENSIONS = ("category", "region", "payment_method")
ALL = ("all", "all")
ADDITIVE = ("revenue", "orders", "units", "refunds", "refund_amount")
METRICS = ("revenue", "orders", "units", "aov", "unique_customers", "refunds", "refund_amount")
MONEY = frozenset({"revenue", "aov", "refund_amount"})
"""Metrics published in euros (the ledger keeps cents)."""
CUSTOMERS = "customers"


def new_ledger(partitions: int) -> Ledger:
    return Ledger(partitions, KINDS)


def event_ms(tx: Transaction) -> int:
    return int(tx.event_time.timestamp() * 1000)


def add(delta: Delta, ledger: Ledger, tx: Transaction) -> None:
    """Count one valid transaction into ``delta``.

    Raises :class:`~ecap.currency.UnknownCurrency` (before changing anything) when its
    amount cannot be converted.
    """
    total = to_eur_cents(cents(tx.amount), tx.currency)
    by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in tx.items:
        entry = by_category[line.category]
        entry[0] += line.quantity * cents(line.unit_price)
        entry[1] += line.quantity
    category_cents = {c: to_eur_cents(v[0], tx.currency) for c, v in by_category.items()}
    at = event_ms(tx)
    if not ledger.admit(delta, at):
        return
    minute = minute_of(at)
    increments = delta.add
    dims = [ALL, ("region", tx.location.region), ("payment_method", tx.payment_method.value)]
    if tx.type is TransactionType.PURCHASE:
        units = sum(line.quantity for line in tx.items)
        for dim, value in dims:
            increments[(minute, "revenue", dim, value)] += total
            increments[(minute, "orders", dim, value)] += 1
            increments[(minute, "units", dim, value)] += units
            _member(delta, ledger, minute, dim, value, tx.user_id)
        for category, (_, quantity) in by_category.items():
            increments[(minute, "revenue", "category", category)] += category_cents[category]
            increments[(minute, "orders", "category", category)] += 1
            increments[(minute, "units", "category", category)] += quantity
            _member(delta, ledger, minute, "category", category, tx.user_id)
    else:
        for dim, value in dims:
            increments[(minute, "refunds", dim, value)] += 1
            increments[(minute, "refund_amount", dim, value)] += total
        for category in by_category:
            increments[(minute, "refunds", "category", category)] += 1
            increments[(minute, "refund_amount", "category", category)] += category_cents[category]


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
    return {
        "revenue": revenue / 100,
        "orders": orders,
        "units": raw.get("units", 0),
        "aov": round(revenue / orders / 100, 2) if orders else None,
        "unique_customers": raw.get("unique_customers", 0),
        "refunds": raw.get("refunds", 0),
        "refund_amount": raw.get("refund_amount", 0) / 100,
    }


def window_values(ledger: Ledger, window: Window) -> dict[str, dict[str, dict[str, Any]]]:
    """``{dimension: {value: {metric: number}}}`` for one window."""
    cells, unions = ledger.cells(window), ledger.unions(window)
    return {dim: values(cells, unions, dim) for dim in ("all", *DIMENSIONS)}


def results(ledger: Ledger, window: Window) -> list[tuple[str, str, str, float]]:
    """(metric, dimension, value, number) for every KPI of a window, for publishing."""
    out = []
    for dim, by_value in window_values(ledger, window).items():
        for value, metrics in by_value.items():
            for metric in METRICS:
                number = metrics[metric]
                if number is not None:
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
