"""An IDR 50,000 purchase was fraud-scored, then dead-lettered at the KPI step with "no FX
rate": IDR and KWD had no rate, and the sales KPIs sent any currency without one to
``transactions.dlq``. Now every currency a shop uses in volume has a rate, and a valid
record in a currency that has none is counted all the same: in ``orders``, not in
``revenue``, and visibly (``unconverted_orders`` and a metric by currency)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.unit.agents.sales_harness import Sales, purchase


def test_an_idr_purchase_is_counted_in_euros() -> None:
    sales = Sales()
    sales.take((0, 0, purchase(amount=50_000, currency="IDR")))
    assert sales.dead.sent == []
    assert sales.all()["revenue"] == 2.88  # 50,000 IDR at 0.92 / 16,000 EUR per IDR
    assert sales.all()["orders"] == 1


def test_a_kwd_purchase_is_counted_in_euros() -> None:
    sales = Sales()
    sales.take((0, 0, purchase(amount=12.345, currency="KWD")))
    assert sales.dead.sent == []
    assert sales.all()["revenue"] == 36.99


def _unconverted(currency: str) -> float:
    value = REGISTRY.get_sample_value("ecap_kpi_unconverted_total", {"currency": currency})
    return value or 0.0


def test_a_purchase_in_a_currency_without_a_rate_is_kept_and_counted() -> None:
    sales = Sales()
    before = _unconverted("KPW")
    sales.take(
        (0, 0, purchase(transaction_id="tx-eur", amount=20.0)),
        (1, 0, purchase(transaction_id="tx-kpw", user_id="u-2", amount=900, currency="KPW")),
    )
    assert sales.dead.sent == []
    values = sales.all()
    assert (values["orders"], values["unconverted_orders"]) == (2, 1)
    assert (values["revenue"], values["aov"], values["unique_customers"]) == (20.0, 20.0, 2)
    assert _unconverted("KPW") == before + 1
