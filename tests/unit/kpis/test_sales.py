"""Sales KPIs from hand-made transactions: known totals per dimension, refunds, currencies."""

from __future__ import annotations

import pytest

from ecap.kpis import sales
from ecap.kpis.ledger import Delta
from ecap.kpis.windows import MINUTE_MS, RETAIN_MS, minute_of, tumbling
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
        "unconverted_orders": 0,
        "unconverted_refunds": 0,
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


def test_three_decimals_of_a_dinar_are_counted(tx: MakeTx) -> None:
    values = fold(tx(1, currency="KWD", items=[("books", 1, 12.345)]))
    assert values["all"]["all"]["revenue"] == 36.99  # 12.345 * 0.92 / 0.307 EUR


def test_an_order_in_a_currency_without_a_rate_counts_without_its_amount(tx: MakeTx) -> None:
    values = fold(
        tx(1, user="u-1", items=[("books", 1, 20.0)]),
        tx(2, user="u-2", currency="KPW", items=[("books", 2, 900)]),
    )
    assert values["all"]["all"] == {
        "revenue": 20.0,
        "orders": 2,
        "units": 3,
        "aov": 20.0,
        "unique_customers": 2,
        "refunds": 0,
        "refund_amount": 0.0,
        "unconverted_orders": 1,
        "unconverted_refunds": 0,
    }
    assert values["category"]["books"]["unconverted_orders"] == 1


def test_a_refund_in_a_currency_without_a_rate_counts_without_its_amount(tx: MakeTx) -> None:
    values = fold(tx(1, kind="refund", currency="KPW", items=[("books", 1, 900)]))
    assert values["all"]["all"]["refunds"] == 1
    assert values["all"]["all"]["refund_amount"] == 0.0
    assert values["all"]["all"]["unconverted_refunds"] == 1


def test_add_says_what_it_did(tx: MakeTx) -> None:
    ledger = sales.new_ledger(1)
    d = Delta(0, 0, 3, arrived_ms=0)
    assert sales.add(d, ledger, tx(1, transaction_id="t-a")) is sales.Outcome.COUNTED
    assert sales.add(d, ledger, tx(2, currency="KPW")) is sales.Outcome.UNCONVERTED
    assert sales.add(d, ledger, tx(3, transaction_id="t-a")) is sales.Outcome.DUPLICATE


def test_a_transaction_id_counted_in_the_ledger_is_not_counted_again(tx: MakeTx) -> None:
    ledger = sales.new_ledger(2)
    first = Delta(0, 0, 0, arrived_ms=0)
    sales.add(first, ledger, tx(1, user="u-1", transaction_id="t-a"))
    ledger.apply(first)
    second = Delta(1, 0, 0, arrived_ms=0)
    outcome = sales.add(second, ledger, tx(1, user="u-2", transaction_id="t-a"))
    assert outcome is sales.Outcome.DUPLICATE
    assert not second.add


def test_a_copy_counted_elsewhere_in_the_batch_is_not_counted(tx: MakeTx) -> None:
    ledger = sales.new_ledger(1)
    d = Delta(0, 0, 0, arrived_ms=0)
    outcome = sales.add(d, ledger, tx(1, transaction_id="t-a"), counted_elsewhere=True)
    assert outcome is sales.Outcome.DUPLICATE
    assert not d.add


def test_transaction_ids_are_kept_as_long_as_their_minute(tx: MakeTx) -> None:
    ledger = sales.new_ledger(1)
    d = Delta(0, 0, 0, arrived_ms=0)
    sales.add(d, ledger, tx(1, transaction_id="t-a"))
    ledger.apply(d)
    later = T0_MS + RETAIN_MS + 2 * MINUTE_MS
    ledger.clock.observe_records(0, later, later)
    ledger.advance(later)
    assert not ledger.sets


def test_the_timeseries_names_what_is_wrong_with_a_query() -> None:
    ledger = sales.new_ledger(1)
    with pytest.raises(ValueError, match="unknown metric 'profit'"):
        sales.timeseries(ledger, "profit", WINDOW.kind, "all")
    with pytest.raises(ValueError, match="unknown dimension 'city'"):
        sales.timeseries(ledger, "revenue", WINDOW.kind, "city")
