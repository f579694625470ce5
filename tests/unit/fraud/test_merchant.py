"""Merchant risk: smoothed rates, so a handful of sales never makes a merchant extreme."""

from __future__ import annotations

import pytest

from ecap.fraud.merchant import BASELINE_RISK, MerchantStats, merchant_risk


def stats(purchases: int = 0, refunds: int = 0, frauds: int = 0) -> MerchantStats:
    merchant = MerchantStats()
    for _ in range(purchases):
        merchant.record_purchase(10.0)
    for _ in range(refunds):
        merchant.record_refund()
    for _ in range(frauds):
        merchant.record_verdict(is_fraud=True)
    return merchant


def test_a_new_merchant_scores_the_baseline() -> None:
    assert merchant_risk(MerchantStats()) == pytest.approx(BASELINE_RISK)


def test_a_merchant_at_ten_times_the_base_fraud_rate() -> None:
    # rates with the 200-purchase prior: refunds (300 + 6) / 10,200 = 3% (x1),
    # fraud (500 + 1) / 10,200 = 4.91% (x9.82); x = (1 + 2 * 9.82) / 3 = 6.88;
    # risk = 6.88 / (6.88 + 9) = 0.433
    assert merchant_risk(stats(10_000, 300, 500)) == pytest.approx(0.433, abs=1e-3)


def test_three_sales_with_a_refund_and_a_fraud_stay_near_the_baseline() -> None:
    # refunds (1 + 6) / 203 (x1.15), fraud (1 + 1) / 203 (x1.97): x = 1.70, risk 0.159
    assert merchant_risk(stats(3, 1, 1)) == pytest.approx(0.159, abs=1e-3)


def test_chargebacks_raise_the_risk_like_confirmed_fraud() -> None:
    merchant = stats(1000)
    before = merchant_risk(merchant)
    for _ in range(20):
        merchant.record_chargeback()
    assert merchant_risk(merchant) > before


def test_false_positive_verdicts_do_not_raise_the_risk() -> None:
    merchant = stats(1000)
    before = merchant_risk(merchant)
    merchant.record_verdict(is_fraud=False)
    assert merchant_risk(merchant) == before


def test_round_trip_keeps_the_counts() -> None:
    merchant = stats(12, 2, 1)
    merchant.record_chargeback()
    restored = MerchantStats.from_bytes(merchant.to_bytes())
    assert restored.to_bytes() == merchant.to_bytes()
    assert merchant_risk(restored) == merchant_risk(merchant)


def test_bytes_of_another_layout_are_refused() -> None:
    with pytest.raises(ValueError, match="layout version 1"):
        MerchantStats.from_bytes(b"[2,0,0,0,0,0,0]")
