"""``fraud_cases.amount`` was ``numeric(12, 2)``: a case rounded KWD 12.345 to 12.35 and
could not hold 15,000,000,000 IDR (about 860,000 EUR), so the alert could not become a
case. Migration 0002 makes the column an unconstrained ``numeric``: a case keeps the
amount its alert carried, in any currency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from ecap.db.cases import insert_alerts, list_cases
from ecap.events import FraudAlert


def _alert(transaction_id: str, amount: float, currency: str) -> FraudAlert:
    now = datetime.now(UTC)
    return FraudAlert.model_validate(
        {
            "alert_id": f"a-{transaction_id}",
            "transaction_id": transaction_id,
            "user_id": "u-1",
            "merchant_id": "m-1",
            "amount": amount,
            "currency": currency,
            "score": 0.8,
            "priority": "HIGH",
            "reasons": [{"code": "amount_spike", "description": "big", "contribution": 1.0}],
            "ruleset_version": 1,
            "model_version": "m-1",
            "event_time": now,
            "detection_time": now,
        }
    )


async def _cases(dsn: str, alerts: list[FraudAlert]) -> dict[str, tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        await insert_alerts(conn, [(alert, None) for alert in alerts])
        cases = await list_cases(conn, status=None, limit=100)
    finally:
        await conn.close()
    return {case.transaction_id: (str(case.amount), case.currency) for case in cases}


def test_a_case_keeps_the_amount_of_its_alert_in_any_currency(database: str) -> None:
    alerts = [
        _alert("t-kwd", 12.345, "KWD"),
        _alert("t-idr", 15_000_000_000, "IDR"),
        _alert("t-jpy", 1_500_000, "JPY"),
    ]
    assert asyncio.run(_cases(database, alerts)) == {
        "t-kwd": ("12.345", "KWD"),
        "t-idr": ("15000000000", "IDR"),
        "t-jpy": ("1500000", "JPY"),
    }
