"""The online anomaly model: bounded scores, sampled learning, feedback, and bytes."""

from __future__ import annotations

import pytest

from ecap.fraud.features import FEATURE_NAMES, Features
from ecap.fraud.model import LEARN_EVERY, MIN_LEARNED, MIN_VERDICTS, AnomalyModel


def features(**values: float) -> Features:
    return Features(**{name: values.get(name, 0.0) for name in FEATURE_NAMES})


NORMAL = features(amount_ratio=1.0, local_hour=14.0, tx_count_10m=1.0)
STRANGE = features(
    amount_ratio=9.0, amount_z=6.0, speed_kmh=40_000.0, km_from_home=8000.0, new_device=1.0,
    new_ip=1.0, local_hour=3.5, hour_rarity=1.0, tx_count_10m=1.0,
)  # fmt: skip


def trained(n: int = MIN_LEARNED * LEARN_EVERY) -> AnomalyModel:
    model = AnomalyModel(seed=7)
    for _ in range(n):
        model.learn(NORMAL)
    return model


def test_learns_one_call_in_learn_every() -> None:
    model = AnomalyModel()
    for _ in range(LEARN_EVERY * 5):
        model.learn(NORMAL)
    assert model.learned == 5


def test_abstains_until_it_has_learned_enough() -> None:
    model = trained(MIN_LEARNED * LEARN_EVERY - 1)
    assert model.score(STRANGE) == 0.0
    model.learn(NORMAL)
    assert model.score(STRANGE) > 0.0


def test_scores_the_unusual_above_the_usual_within_0_and_1() -> None:
    model = trained()
    usual, unusual = model.score(NORMAL), model.score(STRANGE)
    assert 0.0 <= usual < unusual <= 1.0


def test_round_trip_keeps_scores_equal() -> None:
    model = trained()
    restored = AnomalyModel.from_bytes(model.to_bytes())
    assert [restored.score(x) for x in (NORMAL, STRANGE)] == [
        model.score(x) for x in (NORMAL, STRANGE)
    ]
    assert restored.learned == model.learned


def test_bytes_of_something_else_are_refused() -> None:
    import pickle

    with pytest.raises(ValueError, match="expected a pickled AnomalyModel"):
        AnomalyModel.from_bytes(pickle.dumps({"not": "a model"}))


def test_verdicts_join_the_score_only_after_enough_of_each_kind() -> None:
    model = trained()
    for _ in range(MIN_VERDICTS):
        model.learn_feedback(STRANGE, is_fraud=True)
    assert not model.supervised
    for _ in range(MIN_VERDICTS - 1):
        model.learn_feedback(NORMAL, is_fraud=False)
    assert not model.supervised
    model.learn_feedback(NORMAL, is_fraud=False)
    assert model.supervised


def test_verdicts_raise_the_score_of_what_was_confirmed_as_fraud() -> None:
    model = trained()
    confirmed = features(new_instrument=1.0, local_hour=14.0, tx_count_10m=1.0)
    cleared = features(new_device=1.0, local_hour=14.0, tx_count_10m=1.0)
    assert model.score(confirmed) < model.score(cleared)  # the trees alone rank them so
    for _ in range(5 * MIN_VERDICTS):
        model.learn_feedback(confirmed, is_fraud=True)
        model.learn_feedback(cleared, is_fraud=False)
    assert model.score(confirmed) > model.score(cleared)
