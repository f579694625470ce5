"""The detector: idempotence, deterministic alerts, the noisy-OR score and its reasons."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import orjson
import pytest

from ecap.events import AlertPriority
from ecap.fraud.detector import Detector, RulePrecision, to_alert
from ecap.fraud.merchant import MerchantStats
from ecap.fraud.model import AnomalyModel
from ecap.fraud.rules import RuleSet, load_default_rules
from ecap.fraud.state import UserState, token
from tests.unit.fraud.conftest import NEW_YORK, T0, MakeTx


def rules(*weights: float, version: int = 1, threshold: float = 0.5) -> RuleSet:
    """Rules ``big1``, ``big2``... with these weights, each firing at 100 EUR or more."""
    document: dict[str, Any] = {
        "version": version,
        "threshold": threshold,
        "bands": {"critical": 0.9, "high": 0.75, "medium": 0.6},
        "rules": [
            {
                "id": f"big{i}",
                "description": f"big amount {i}",
                "weight": weight,
                "condition": {"feature": "amount", "op": ">=", "value": 100},
            }
            for i, weight in enumerate(weights, 1)
        ],
    }
    return RuleSet.model_validate_json(orjson.dumps(document))


def test_the_same_transaction_twice_is_decided_once(tx: MakeTx) -> None:
    detector, state, merchant = Detector(rules(0.9)), UserState(), MerchantStats()
    purchase = tx(0, amount=150.0)
    assert detector.process(purchase, state, merchant) is not None
    assert detector.process(purchase, state, merchant) is None
    assert (state.count, merchant.purchases) == (1, 1)


def test_two_rules_combine_as_a_noisy_or(tx: MakeTx) -> None:
    decision = Detector(rules(0.5, 0.6)).process(tx(0, amount=150.0), UserState(), MerchantStats())
    assert decision is not None
    # 1 - (1 - 0.5)(1 - 0.6) = 0.8; shares ln 2 : ln 2.5 = 0.693 : 0.916
    assert decision.score == pytest.approx(0.8)
    assert [(r.code, round(r.contribution, 3)) for r in decision.reasons] == [
        ("big2", 0.569),
        ("big1", 0.431),
    ]
    assert math.fsum(r.contribution for r in decision.reasons) == pytest.approx(1.0)
    assert decision.fired
    assert decision.priority is AlertPriority.HIGH


def test_a_score_below_the_threshold_does_not_fire(tx: MakeTx) -> None:
    decision = Detector(rules(0.4)).process(tx(0, amount=150.0), UserState(), MerchantStats())
    assert decision is not None
    assert (decision.score, decision.fired, decision.priority) == (
        pytest.approx(0.4),
        False,
        AlertPriority.LOW,
    )
    with pytest.raises(ValueError, match="below the threshold"):
        to_alert(tx(0), decision, T0)


def test_nothing_suspicious_scores_zero_with_no_reasons(tx: MakeTx) -> None:
    decision = Detector(rules(0.9)).process(tx(0, amount=20.0), UserState(), MerchantStats())
    assert decision is not None
    assert (decision.score, decision.reasons, decision.fired) == (0.0, [], False)


def test_alert_id_depends_only_on_the_transaction_id(tx: MakeTx) -> None:
    purchase = tx(0, amount=150.0, transaction_id="tx-redelivered")
    alerts = []
    for _ in range(2):
        decision = Detector(rules(0.9)).process(purchase, UserState(), MerchantStats())
        assert decision is not None
        alerts.append(to_alert(purchase, decision, T0 + timedelta(seconds=len(alerts))))
    other = Detector(rules(0.9)).process(tx(0, amount=150.0), UserState(), MerchantStats())
    assert other is not None
    assert alerts[0].alert_id == alerts[1].alert_id
    assert to_alert(tx(0, amount=150.0), other, T0).alert_id != alerts[0].alert_id


def test_alert_carries_score_reasons_and_versions(tx: MakeTx) -> None:
    detector = Detector(rules(0.95, version=7))
    purchase = tx(0, amount=150.0)
    decision = detector.process(purchase, UserState(), MerchantStats())
    assert decision is not None
    alert = to_alert(purchase, decision, T0 + timedelta(milliseconds=40))
    assert (alert.transaction_id, alert.user_id, alert.amount) == (
        purchase.transaction_id,
        "u-1",
        150.0,
    )
    assert alert.priority is AlertPriority.CRITICAL
    assert [r.code for r in alert.reasons] == ["big1"]
    assert (alert.ruleset_version, alert.model_version) == (7, AnomalyModel.version)
    assert alert.detection_time - alert.event_time == timedelta(milliseconds=40)


def test_a_swapped_rule_set_applies_from_the_next_transaction(tx: MakeTx) -> None:
    detector, state, merchant = Detector(rules(0.9)), UserState(), MerchantStats()
    first = detector.process(tx(0, amount=150.0), state, merchant)
    detector.set_ruleset(rules(0.9).disable("big1"))
    second = detector.process(tx(10, amount=150.0), state, merchant)
    assert first is not None
    assert second is not None
    assert (first.fired, second.fired, second.ruleset_version) == (True, False, 2)


def test_an_alerted_transaction_does_not_make_its_device_known(
    tx: MakeTx, regular: UserState
) -> None:
    detector = Detector(load_default_rules())
    decision = detector.process(
        tx(0, device="d-thief", location=NEW_YORK), regular, MerchantStats()
    )
    assert decision is not None
    assert decision.fired
    assert token("d-thief") not in regular.devices
    follow_up = detector.process(
        tx(60, device="d-thief", location=NEW_YORK), regular, MerchantStats()
    )
    assert follow_up is not None
    assert follow_up.fired


def test_a_refund_is_counted_but_not_scored(tx: MakeTx) -> None:
    state, merchant = UserState(), MerchantStats()
    decision = Detector(rules(0.9)).process(tx(0, amount=500.0, kind="refund"), state, merchant)
    assert decision is not None
    assert (decision.score, decision.fired, decision.features) == (0.0, False, None)
    assert (state.count, merchant.refunds, merchant.purchases) == (1, 1, 0)


def test_default_rules_do_not_alert_on_a_regular_purchase(tx: MakeTx, regular: UserState) -> None:
    decision = Detector(load_default_rules()).process(tx(0, amount=55.0), regular, MerchantStats())
    assert decision is not None
    assert not decision.fired


def test_rule_precision_from_verdicts() -> None:
    precision = RulePrecision()
    for is_fraud in (True, True, True, False):
        precision.record(["big1"], is_fraud)
    # Beta(1, 1) prior: (3 + 1) / (4 + 2)
    assert precision.precision("big1") == pytest.approx(4 / 6)
    assert precision.precision("never-seen") == 0.5
    restored = RulePrecision.from_bytes(precision.to_bytes())
    assert restored.precision("big1") == pytest.approx(4 / 6)


def test_detector_records_verdicts_per_rule() -> None:
    detector = Detector(rules(0.9))
    detector.record_verdict(["big1", "big2"], is_fraud=False)
    assert detector.rule_precision.counts == {"big1": [1, 0], "big2": [1, 0]}


class CountingModel(AnomalyModel):
    """A model that always finds everything anomalous, and counts how often it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def score(self, features: Any) -> float:
        self.asked += 1
        return 1.0


def test_the_model_is_asked_only_when_it_could_reach_the_threshold(tx: MakeTx) -> None:
    # the model adds at most 0.3: with a 0.2 rule the score could reach 1 - 0.8 * 0.7 = 0.44
    # at most, below 0.5; with a 0.3 rule it reaches exactly 0.51
    weak, strong = CountingModel(), CountingModel()
    quiet = Detector(rules(0.2), weak).process(tx(0, amount=150.0), UserState(), MerchantStats())
    loud = Detector(rules(0.3), strong).process(tx(0, amount=150.0), UserState(), MerchantStats())
    assert quiet is not None
    assert loud is not None
    assert (weak.asked, quiet.score, quiet.fired) == (0, pytest.approx(0.2), False)
    assert (strong.asked, loud.score, loud.fired) == (1, pytest.approx(0.51), True)
    assert sorted(r.code for r in loud.reasons) == ["anomaly_model", "big1"]


def test_with_a_low_threshold_the_model_may_alert_alone(tx: MakeTx) -> None:
    model = CountingModel()
    decision = Detector(rules(0.9, threshold=0.25), model).process(
        tx(0, amount=20.0), UserState(), MerchantStats()
    )
    assert decision is not None
    assert (model.asked, decision.fired) == (1, True)
