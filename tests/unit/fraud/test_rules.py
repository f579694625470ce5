"""Rules as data: invalid rule sets are refused with a named reason; the default rules
each fire on the behaviour they are for and stay silent on a normal purchase."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ecap.events import Transaction
from ecap.fraud.features import FEATURE_NAMES, Features, compute_features
from ecap.fraud.rules import RuleSet, evaluate, load_default_rules
from ecap.fraud.state import UserState
from tests.unit.fraud.conftest import NEW_YORK, MakeTx

BOT = {"device": "d-bot", "ip": "192.0.2.50"}


def rule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "fast",
        "description": "five purchases in a minute",
        "weight": 0.8,
        "condition": {"feature": "tx_count_1m", "op": ">=", "value": 5},
    }
    return {**base, **overrides}


def ruleset(*rules: dict[str, Any], **fields: Any) -> bytes:
    return orjson.dumps({"version": 1, "rules": list(rules), **fields})


def features(**values: float) -> Features:
    return Features(**{name: values.get(name, 0.0) for name in FEATURE_NAMES})


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            ruleset(rule(condition={"feature": "tx_count_2m", "op": ">=", "value": 5})),
            "unknown feature 'tx_count_2m'",
        ),
        (
            ruleset(rule(condition={"feature": "tx_count_1m", "op": "=>", "value": 5})),
            "unknown op '=>'",
        ),
        (ruleset(rule(), rule()), "duplicate rule id(s): fast"),
        (ruleset(rule(weight=1.5)), "less than or equal to 1"),
        (ruleset(rule(weight=0)), "greater than 0"),
        (ruleset(rule(id="anomaly_model")), "reserved for the detector's own reasons"),
        (ruleset(rule(id="Has Spaces")), "should match pattern"),
        (
            ruleset(rule(condition={"feature": "tx_count_1m", "op": ">="})),
            "a clause needs exactly 'feature', 'op' and 'value'",
        ),
        (ruleset(rule(condition={"all": []})), "'all' needs at least one condition"),
        (
            ruleset(rule(condition={"all": [], "any": []})),
            "exactly one of",
        ),
        (ruleset(rule(condition={"not": {}})), "Extra inputs are not permitted"),
        (ruleset(rule(), bands={"critical": 0.7, "high": 0.8}), "bands must rise"),
        (ruleset(rule(), threshold=0.7), "below the threshold"),
        (orjson.dumps({"rules": [rule()]}), "version"),
    ],
)
def test_invalid_rule_set_is_rejected_with_the_reason(document: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        RuleSet.model_validate_json(document)
    assert message in str(error.value)


def test_too_deep_a_condition_is_rejected() -> None:
    clause = {"feature": "tx_count_1m", "op": ">=", "value": 5}
    condition: dict[str, Any] = clause
    for _ in range(4):
        condition = {"all": [condition]}
    with pytest.raises(ValidationError, match="nests deeper than 4"):
        RuleSet.model_validate_json(ruleset(rule(condition=condition)))


def test_rule_set_round_trips_through_json() -> None:
    original = load_default_rules()
    assert RuleSet.model_validate_json(original.to_json()).model_dump() == original.model_dump()


# ---------------------------------------------------------------------- evaluation


def test_clause_fires_at_its_boundary() -> None:
    rules = RuleSet.model_validate_json(ruleset(rule()))
    assert [h.rule_id for h in evaluate(rules, features(tx_count_1m=5))] == ["fast"]
    assert evaluate(rules, features(tx_count_1m=4)) == []


def test_all_needs_every_part_and_any_needs_one() -> None:
    a = {"feature": "new_device", "op": "==", "value": 1}
    b = {"feature": "km_from_home", "op": ">", "value": 1000}
    rules = RuleSet.model_validate_json(
        ruleset(
            rule(id="both", condition={"all": [a, b]}), rule(id="either", condition={"any": [a, b]})
        )
    )
    assert [h.rule_id for h in evaluate(rules, features(new_device=1))] == ["either"]
    fired = evaluate(rules, features(new_device=1, km_from_home=5000))
    assert [h.rule_id for h in fired] == ["both", "either"]


def test_disabled_rule_does_not_fire() -> None:
    rules = RuleSet.model_validate_json(ruleset(rule(enabled=False)))
    assert evaluate(rules, features(tx_count_1m=50)) == []


def test_disable_returns_a_new_version_without_the_rule() -> None:
    rules = RuleSet.model_validate_json(ruleset(rule(), rule(id="other")))
    disabled = rules.disable("fast")
    assert disabled.version == 2
    assert [h.rule_id for h in evaluate(disabled, features(tx_count_1m=9))] == ["other"]


def test_disable_of_an_unknown_rule_names_it() -> None:
    with pytest.raises(KeyError, match="no rule 'nope'"):
        RuleSet.model_validate_json(ruleset(rule())).disable("nope")


# ---------------------------------------------------------------------- the default rules

Scenario = Callable[[MakeTx, UserState], Transaction]


def card_testing_first(tx: MakeTx, user: UserState) -> Transaction:
    return tx(0, amount=1.5, instrument="pi-stolen-1", **BOT)


def card_testing_burst(tx: MakeTx, user: UserState) -> Transaction:
    user.update(tx(-20, amount=1.2, instrument="pi-stolen-1", **BOT), trusted=False)
    return tx(0, amount=1.5, instrument="pi-stolen-2", **BOT)


def many_instruments(tx: MakeTx, user: UserState) -> Transaction:
    user.update(tx(-240, instrument="pi-a", **BOT), trusted=False)
    user.update(tx(-120, instrument="pi-b", **BOT), trusted=False)
    return tx(0, instrument="pi-c", **BOT)


def new_device_network_card(tx: MakeTx, user: UserState) -> Transaction:
    return tx(0, instrument="pi-a", **BOT)


def new_device_far_away(tx: MakeTx, user: UserState) -> Transaction:
    return tx(0, device="d-bot", location=NEW_YORK)


def impossible_travel(tx: MakeTx, user: UserState) -> Transaction:
    user.update(tx(-120))
    return tx(0, location=NEW_YORK)


def amount_spike(tx: MakeTx, user: UserState) -> Transaction:
    return tx(0, amount=400.0)


def new_device_big_amount(tx: MakeTx, user: UserState) -> Transaction:
    return tx(0, amount=200.0, device="d-bot")


def odd_hours(tx: MakeTx, user: UserState) -> Transaction:
    return tx(-10 * 3600)  # 02:00 UTC, 02:54 in Berlin


def velocity_unknown_cards(tx: MakeTx, user: UserState) -> Transaction:
    user.update(tx(-200, instrument="pi-a"), trusted=False)
    user.update(tx(-100))
    return tx(0, instrument="pi-b")


SCENARIOS: dict[str, Scenario] = {
    f.__name__: f
    for f in (
        card_testing_first,
        card_testing_burst,
        many_instruments,
        new_device_network_card,
        new_device_far_away,
        impossible_travel,
        amount_spike,
        new_device_big_amount,
        odd_hours,
        velocity_unknown_cards,
    )
}


def test_every_default_rule_has_a_scenario_here() -> None:
    assert sorted(r.id for r in load_default_rules().rules) == sorted(SCENARIOS)


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_default_rule_fires_on_its_scenario(rule_id: str, tx: MakeTx, regular: UserState) -> None:
    attack = SCENARIOS[rule_id](tx, regular)
    fired = evaluate(load_default_rules(), compute_features(attack, regular))
    assert rule_id in [hit.rule_id for hit in fired]


def test_no_default_rule_fires_on_a_normal_purchase(tx: MakeTx, regular: UserState) -> None:
    normal = tx(0, amount=65.0)
    assert evaluate(load_default_rules(), compute_features(normal, regular)) == []


def test_no_default_rule_fires_on_a_first_purchase_from_far_away(tx: MakeTx) -> None:
    first = tx(0, amount=900.0, location=NEW_YORK)
    assert evaluate(load_default_rules(), compute_features(first, UserState())) == []
