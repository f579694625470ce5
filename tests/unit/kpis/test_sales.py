"""Sales KPIs from hand-made transactions: known totals per dimension, refunds, currencies."""

from __future__ import annotations

import pytest

from ecap.currency import UnknownCurrency
from ecap.kpis import sales
from ecap.kpis.ledger import Delta
from ecap.kpis.windows import minute_of, tumbling
from tests.unit.kpis.conftest import T0_MS, TOKYO, MakeTx

WINDOW = tumbling(minute_of(T0_MS))


def fold(*txs: object) -> dict[str, dict[str, dict[str, object]]]:
    ledger = sales.new_ledger(1)
    d = Delta(0, 0, len(txs), arrived_ms=0)
    for tx in txs:
        sales.add(d, ledger, tx)  # type: ignore[arg-type]
    ledger.apply(d)
    return sales.window_values(ledger, WINDOW)


def test_two_purchases_give_revenue_orders_units_aov_and_customers(tx: MakeTx) -> None:
    values = fold(
        tx(1, user="u-1", items=[("books", 2, 10.0), ("toys", 1, 5.5)]),
        tx(2, user="u-2", items=[("books", 1, 20.0)]),
    )
    assert values["all"]["all"] == {
        "revenue": 45.5,
        "orders": 2,
        "units": 4,
        "aov": 22.75,
        "unique_customers": 2,
        "refunds": 0,
        "refund_amount": 0.0,
    }
    assert values["category"]["books"]["revenue"] == 40.0
    assert values["category"]["books"]["orders"] == 2
    assert values["category"]["toys"]["units"] == 1
    assert values["payment_method"]["credit_card"]["orders"] == 2


def test_revenue_is_in_euros_and_regions_come_from_the_location(tx: MakeTx) -> None:
    values = fold(tx(1, currency="JPY", items=[("books", 1, 1500.0)], location=TOKYO))
    # 1500 JPY at 0.92 / 150 EUR per JPY = 9.20 EUR
    assert values["region"]["APAC"]["revenue"] == 9.2


def test_a_refund_counts_as_a_refund_not_as_an_order(tx: MakeTx) -> None:
    values = fold(tx(1, kind="refund", items=[("books", 1, 12.5)]))
    assert values["all"]["all"]["refunds"] == 1
    assert values["all"]["all"]["refund_amount"] == 12.5
    assert values["all"]["all"]["orders"] == 0
    assert values["category"]["books"]["refunds"] == 1


def test_a_repeat_customer_counts_once(tx: MakeTx) -> None:
    values = fold(tx(1, user="u-1"), tx(2, user="u-1"))
    assert values["all"]["all"]["unique_customers"] == 1
    assert values["all"]["all"]["orders"] == 2


def test_an_unknown_currency_is_refused_before_anything_is_counted(tx: MakeTx) -> None:
    ledger = sales.new_ledger(1)
    d = Delta(0, 0, 0, arrived_ms=0)
    with pytest.raises(UnknownCurrency):
        sales.add(d, ledger, tx(1, currency="XXX"))
    assert not d.add
    assert not d.members
    assert d.watermark is None


def test_the_timeseries_names_what_is_wrong_with_a_query() -> None:
    ledger = sales.new_ledger(1)
    with pytest.raises(ValueError, match="unknown metric 'profit'"):
        sales.timeseries(ledger, "profit", WINDOW.kind, "all")
    with pytest.raises(ValueError, match="unknown dimension 'city'"):
        sales.timeseries(ledger, "revenue", WINDOW.kind, "city")
