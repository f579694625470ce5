"""The detector: one decision per transaction, from rules, a z-score, a model and merchants.

``Detector.process(tx, state, merchant)`` does, in this order:

1. **De-duplicate.** A transaction id the user's state has seen returns ``None``: a
   redelivered record changes nothing and yields no second alert.
2. **Features** from the state *before* the transaction (``ecap.fraud.features``).
3. **Score.** Every part gives a probability-like strength ``p`` in [0, 1):

   * each rule that fires: its ``weight``;
   * the amount z-score: 0 up to :data:`Z_FROM` deviations, rising linearly to
     :data:`Z_WEIGHT` at :data:`Z_FULL`;
   * the merchant risk above its baseline, up to :data:`MERCHANT_WEIGHT`;
   * the anomaly model: 0 up to :data:`MODEL_FROM`, rising to :data:`MODEL_WEIGHT` at 1.
     The model is consulted only when it could bring the score to the threshold (with
     the default weights: when the other parts reach 0.29): elsewhere it could change
     neither the decision nor the priority, and scoring it is one of the detector's
     largest costs. A transaction far below the threshold has no model part in its
     score.

   Statistical parts under :data:`MIN_PART` are left out. The parts combine as a
   noisy-OR, ``score = 1 - prod(1 - p)``: independent pieces of evidence add up and no
   part can push the score past 1. Only a rule (whose weight may reach the threshold)
   can raise an alert on its own; no statistical part reaches the default threshold of
   0.5 alone, so they decide together with other evidence. Each reason's
   ``contribution`` is its share of ``-sum(log(1 - p))``, so they sum to 1.
4. **Decide.** ``fired`` when the score reaches the rule set's ``threshold``; the
   priority comes from the rule set's ``bands``.
5. **Update** the user's state (an alerted transaction as untrusted, see
   ``ecap.fraud.state``), the merchant's counts, and teach the model the transactions
   that did not alert.

Refunds are de-duplicated and counted (user and merchant) but not scored: they move money
back to a known instrument, and no scenario of ours abuses them.

``record_verdict`` keeps each rule's precision from investigators' verdicts
(:class:`RulePrecision`, smoothed). The detector reports these figures but does not yet
re-weight rules with them: a rule's weight changes only when someone pushes a new rule
set.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import orjson

from ecap.events import AlertPriority, AlertReason, FraudAlert, Transaction
from ecap.fraud.features import Features, features_from
from ecap.fraud.merchant import BASELINE_RISK, MerchantStats, merchant_risk
from ecap.fraud.model import AnomalyModel
from ecap.fraud.rules import RuleSet, evaluate
from ecap.fraud.state import UserState, facts

Z_FROM = 3.0
Z_FULL = 6.0
Z_WEIGHT = 0.45
MODEL_FROM = 0.7
MODEL_WEIGHT = 0.3
MERCHANT_WEIGHT = 0.3
MIN_PART = 0.01
"""Statistical parts weaker than this are left out: they would not move a decision, and
a reason that contributes nothing is noise to an investigator."""
MAX_PART = 0.999
"""Parts are capped below 1 so that every contribution stays finite."""
_MERCHANT_FROM = BASELINE_RISK + MIN_PART / MERCHANT_WEIGHT * (1.0 - BASELINE_RISK)
_MODEL_FROM = MODEL_FROM + MIN_PART / MODEL_WEIGHT * (1.0 - MODEL_FROM)
_Z_FROM = Z_FROM + MIN_PART / Z_WEIGHT * (Z_FULL - Z_FROM)

ALERT_NAMESPACE = uuid.UUID("0b7c3a52-4f0e-5d8e-9a51-6f1d2c3b4a50")
"""uuid5 namespace of alert ids: the same transaction always gets the same alert id."""


class Decision(NamedTuple):
    """The outcome for one transaction (a named tuple: built for every transaction, so it
    has to be cheap)."""

    score: float
    priority: AlertPriority
    reasons: list[AlertReason]
    """What raised the score, largest contribution first; contributions sum to 1 (or the
    list is empty when the score is 0)."""
    fired: bool
    ruleset_version: int
    model_version: str
    features: Features | None
    """The features scored (None for refunds), e.g. to store with a case so that a later
    verdict can be taught to the model with ``AnomalyModel.learn_feedback``."""


class RulePrecision:
    """Per-rule verdict counts and their smoothed precision (Beta(1, 1) prior)."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        """Rule id -> [false positives, confirmed frauds]."""

    def record(self, rule_ids: Iterable[str], is_fraud: bool) -> None:
        for rule_id in rule_ids:
            self.counts.setdefault(rule_id, [0, 0])[int(is_fraud)] += 1

    def precision(self, rule_id: str) -> float:
        false, true = self.counts.get(rule_id, (0, 0))
        return (true + 1) / (true + false + 2)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.counts)

    @classmethod
    def from_bytes(cls, data: bytes) -> RulePrecision:
        stats = cls()
        stats.counts = {k: [int(v[0]), int(v[1])] for k, v in orjson.loads(data).items()}
        return stats


class Detector:
    """Scores transactions with a rule set (swappable at run time) and an online model."""

    def __init__(
        self,
        ruleset: RuleSet,
        model: AnomalyModel | None = None,
        rule_precision: RulePrecision | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.model = model if model is not None else AnomalyModel()
        self.rule_precision = rule_precision if rule_precision is not None else RulePrecision()

    def set_ruleset(self, ruleset: RuleSet) -> None:
        """Use ``ruleset`` from the next transaction on (already validated and compiled)."""
        self.ruleset = ruleset

    def record_verdict(self, rule_ids: Iterable[str], is_fraud: bool) -> None:
        self.rule_precision.record(rule_ids, is_fraud)

    def process(
        self, tx: Transaction, state: UserState, merchant: MerchantStats
    ) -> Decision | None:
        """Decide on ``tx`` and apply it to ``state`` and ``merchant`` (None: a duplicate)."""
        f = facts(tx)
        if f.digest in state.seen_ids:
            return None
        ruleset = self.ruleset
        model = self.model
        if not f.purchase:
            state.apply(f)
            merchant.record_refund()
            return Decision(0.0, AlertPriority.LOW, [], False, ruleset.version, model.version, None)

        features = features_from(f, state, merchant_risk(merchant))
        parts: list[tuple[str, str, float]] = [
            (hit.rule_id, hit.description, hit.weight) for hit in evaluate(ruleset, features)
        ]
        z = features.amount_z
        if z >= _Z_FROM:
            share = min(1.0, (z - Z_FROM) / (Z_FULL - Z_FROM))
            parts.append(
                (
                    "amount_zscore",
                    f"amount {tx.amount:.2f} is {z:.1f} standard deviations above "
                    "the user's usual (log) amount",
                    Z_WEIGHT * share,
                )
            )
        risk = features.merchant_risk
        if risk >= _MERCHANT_FROM:
            share = (risk - BASELINE_RISK) / (1.0 - BASELINE_RISK)
            parts.append(
                (
                    "merchant_risk",
                    f"merchant risk {risk:.2f} from its refunds, chargebacks and confirmed fraud",
                    MERCHANT_WEIGHT * share,
                )
            )
        if _could_reach(parts, ruleset.threshold):
            model_score = model.score(features)
            if model_score >= _MODEL_FROM:
                share = (model_score - MODEL_FROM) / (1.0 - MODEL_FROM)
                parts.append(
                    (
                        "anomaly_model",
                        f"online model finds this combination unusual ({model_score:.2f})",
                        MODEL_WEIGHT * share,
                    )
                )

        score, reasons = _combine(parts) if parts else (0.0, [])
        fired = score >= ruleset.threshold
        state.apply(f, trusted=not fired)
        merchant.record_purchase(tx.amount)
        if not fired:
            model.learn(features)
        return Decision(
            score,
            priority(ruleset, score) if fired else AlertPriority.LOW,
            reasons,
            fired,
            ruleset.version,
            model.version,
            features,
        )


def _could_reach(parts: list[tuple[str, str, float]], threshold: float) -> bool:
    """Whether the model's strongest part would bring this evidence to the threshold."""
    keep = 1.0 - MODEL_WEIGHT
    for _, _, p in parts:
        keep *= 1.0 - p
    return 1.0 - keep >= threshold


def _combine(parts: list[tuple[str, str, float]]) -> tuple[float, list[AlertReason]]:
    """Noisy-OR of the parts, and each part's share of the evidence."""
    evidence = [(code, text, -math.log1p(-min(p, MAX_PART))) for code, text, p in parts if p > 0]
    total = sum(e for _, _, e in evidence)
    if total <= 0.0:
        return 0.0, []
    evidence.sort(key=lambda part: -part[2])
    reasons = [
        AlertReason(code=code, description=text, contribution=e / total)
        for code, text, e in evidence
    ]
    return -math.expm1(-total), reasons


def priority(ruleset: RuleSet, score: float) -> AlertPriority:
    bands = ruleset.bands
    if score >= bands.critical:
        return AlertPriority.CRITICAL
    if score >= bands.high:
        return AlertPriority.HIGH
    if score >= bands.medium:
        return AlertPriority.MEDIUM
    return AlertPriority.LOW


def alert_id(transaction_id: str) -> str:
    """The id of the (only) alert a transaction can raise."""
    return f"al-{uuid.uuid5(ALERT_NAMESPACE, transaction_id)}"


def to_alert(tx: Transaction, decision: Decision, detection_time: datetime) -> FraudAlert:
    """The alert for a fired decision; its id depends on the transaction id alone."""
    if not decision.fired:
        raise ValueError(
            f"transaction {tx.transaction_id} scored {decision.score:.3f}, below the threshold; "
            "only fired decisions become alerts"
        )
    return FraudAlert(
        alert_id=alert_id(tx.transaction_id),
        transaction_id=tx.transaction_id,
        user_id=tx.user_id,
        merchant_id=tx.merchant_id,
        amount=tx.amount,
        currency=tx.currency,
        score=decision.score,
        priority=decision.priority,
        reasons=decision.reasons,
        ruleset_version=decision.ruleset_version,
        model_version=decision.model_version,
        event_time=tx.event_time,
        detection_time=detection_time,
    )
