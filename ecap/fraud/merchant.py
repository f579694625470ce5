"""Merchant statistics and the merchant risk score built from them.

The detector counts every merchant's purchases and refunds as they stream past; the
alerts worker adds chargebacks and investigators' verdicts. :func:`merchant_risk` turns
those counts into a score in [0, 1] from *smoothed* rates: each rate starts from a prior
worth :data:`PRIOR_PURCHASES` purchases at the platform's base rate, so a merchant with
three sales and one refund is not "33% refunds", and a new merchant scores the baseline
(:data:`BASELINE_RISK`).
"""

from __future__ import annotations

import orjson

MERCHANT_VERSION = 1

PRIOR_PURCHASES = 200.0
"""Weight of the prior, in purchases: a merchant's own rates dominate after a few hundred."""
BASE_REFUND_RATE = 0.03
"""Refunds per purchase of an ordinary merchant."""
BASE_FRAUD_RATE = 0.005
"""Confirmed frauds and chargebacks per purchase of an ordinary merchant."""
FRAUD_EMPHASIS = 2.0
"""Excess fraud counts this many times more than excess refunds."""
BASELINE_RISK = 0.1
"""The risk of a merchant whose rates equal the base rates (and of a new merchant)."""


class MerchantStats:
    """Counts for one merchant; one record per merchant in the worker's table."""

    __slots__ = ("amount", "chargebacks", "cleared", "confirmed_fraud", "purchases", "refunds")

    def __init__(self) -> None:
        self.purchases = 0
        self.amount = 0.0
        self.refunds = 0
        self.chargebacks = 0
        self.confirmed_fraud = 0
        """Investigator verdicts: alerts on this merchant confirmed as fraud."""
        self.cleared = 0
        """Investigator verdicts: alerts on this merchant that were false positives."""

    def record_purchase(self, amount: float) -> None:
        self.purchases += 1
        self.amount += amount

    def record_refund(self) -> None:
        self.refunds += 1

    def record_chargeback(self) -> None:
        self.chargebacks += 1

    def record_verdict(self, is_fraud: bool) -> None:
        if is_fraud:
            self.confirmed_fraud += 1
        else:
            self.cleared += 1

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            [
                MERCHANT_VERSION,
                self.purchases,
                self.amount,
                self.refunds,
                self.chargebacks,
                self.confirmed_fraud,
                self.cleared,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> MerchantStats:
        fields = orjson.loads(data)
        if not isinstance(fields, list) or len(fields) != 7 or fields[0] != MERCHANT_VERSION:
            raise ValueError(
                f"merchant stats are not layout version {MERCHANT_VERSION} "
                f"(got {str(fields)[:60]}); rebuild them by replaying the transactions topic"
            )
        stats = cls()
        (
            _,
            stats.purchases,
            stats.amount,
            stats.refunds,
            stats.chargebacks,
            stats.confirmed_fraud,
            stats.cleared,
        ) = fields
        return stats


_K = (1 - BASELINE_RISK) / BASELINE_RISK


def merchant_risk(stats: MerchantStats | None) -> float:
    """Risk in [0, 1): ``x / (x + k)`` of the merchant's excess over the base rates.

    ``x`` is the smoothed refund rate over the base refund rate and the smoothed fraud
    rate over the base fraud rate, averaged (fraud weighted :data:`FRAUD_EMPHASIS`), so
    ``x`` is 1 for an ordinary merchant and ``k`` puts that at :data:`BASELINE_RISK`.
    A merchant at ten times the base fraud rate (and base refunds) scores 0.44.
    """
    if stats is None:
        return BASELINE_RISK
    n = stats.purchases + PRIOR_PURCHASES
    refund_rate = (stats.refunds + PRIOR_PURCHASES * BASE_REFUND_RATE) / n
    fraud_rate = (stats.chargebacks + stats.confirmed_fraud + PRIOR_PURCHASES * BASE_FRAUD_RATE) / n
    x = (refund_rate / BASE_REFUND_RATE + FRAUD_EMPHASIS * fraud_rate / BASE_FRAUD_RATE) / (
        1 + FRAUD_EMPHASIS
    )
    return x / (x + _K)
