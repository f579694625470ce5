"""The online anomaly model: river's Half-Space Trees over a few scaled features, plus a
logistic regression that learns from investigators' verdicts.

* **Unsupervised part.** ``anomaly.HalfSpaceTrees`` needs inputs in [0, 1]; the features
  are mapped there by fixed, monotone squashes (:func:`scale`) rather than a learned
  scaler, because river's ``StandardScaler`` in front of the trees tripled the cost of a
  learning step (27 us against 9 us measured, 10 trees of height 8) and a fixed map keeps
  the scale stable while the model learns. Scoring costs about 5 us, squashing included,
  with :data:`N_TREES` trees of height :data:`HEIGHT`; the detector asks for a score only
  when it could change a decision (see ``ecap.fraud.detector``).
* **Learning on a sample.** ``learn`` updates the trees on every :data:`LEARN_EVERY`-th
  call only: the trees describe the bulk of normal traffic, which a 1-in-4 sample
  describes as well, at a quarter of the cost. The detector calls ``learn`` only for
  transactions it did not alert on, so confirmed attacks do not become "normal".
* **Warm-up.** The trees abstain (score 0) until they have learned :data:`MIN_LEARNED`
  samples: at the start of a stream too little is known for "unusual" to mean anything.
* **Supervised part.** ``learn_feedback`` trains a ``linear_model.LogisticRegression`` on
  verdicts (confirmed fraud or false positive). Its probability joins the score once it
  has seen :data:`MIN_VERDICTS` verdicts of each kind; until then ``score`` is the trees'
  score alone.

``to_bytes``/``from_bytes`` pickle the whole model (river models are plain Python
objects); only load bytes this worker wrote, as with any pickle.
"""

from __future__ import annotations

import math
import pickle

from river import anomaly, linear_model, optim

from ecap.fraud.features import Features

N_TREES = 5
HEIGHT = 6
WINDOW = 250
LEARN_EVERY = 4
MIN_VERDICTS = 20
MIN_LEARNED = 4 * WINDOW
"""Samples the trees learn before they score: until then they describe too little traffic
(at the start of a stream every rare-but-normal purchase would look anomalous)."""
MODEL_VERSION = f"hst{N_TREES}x{HEIGHT}+lr/1"


def _clip(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


_LOG_SPEED = math.log1p(100_000.0)
_LOG_KM = math.log1p(20_000.0)
_LOG_COUNT = math.log1p(30.0)
_TWO_PI_DAY = 2 * math.pi / 24.0


def scale(f: Features) -> dict[str, float]:
    """The model's inputs: features mapped into [0, 1] by fixed monotone squashes (the
    night input peaks at 03:30 local time)."""
    return {
        "amount_z": _clip((f.amount_z + 2.0) / 8.0),
        "amount_ratio": _clip(math.log2(max(f.amount_ratio, 1e-3)) / 6.0 + 0.5),
        "speed": min(1.0, math.log1p(f.speed_kmh) / _LOG_SPEED),
        "km_from_home": min(1.0, math.log1p(f.km_from_home) / _LOG_KM),
        "new_device": f.new_device,
        "new_instrument": f.new_instrument,
        "new_ip": f.new_ip,
        "unknown_instruments": min(1.0, f.unknown_instruments_1h / 5.0),
        "small_amounts": min(1.0, f.small_amount_count_10m / 5.0),
        "velocity": min(1.0, math.log1p(f.tx_count_10m) / _LOG_COUNT),
        "night": (1.0 + math.cos(_TWO_PI_DAY * (f.local_hour - 3.5))) / 2.0,
        "hour_rarity": f.hour_rarity,
    }


class AnomalyModel:
    """Online anomaly score in [0, 1]; see the module docstring."""

    version = MODEL_VERSION

    def __init__(self, seed: int = 42) -> None:
        self.trees = anomaly.HalfSpaceTrees(
            n_trees=N_TREES, height=HEIGHT, window_size=WINDOW, seed=seed
        )
        self.classifier = linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
        self.calls = 0
        self.learned = 0
        self.verdicts = [0, 0]
        """Verdicts learned: [false positives, confirmed frauds]."""

    @property
    def supervised(self) -> bool:
        return min(self.verdicts) >= MIN_VERDICTS

    @property
    def ready(self) -> bool:
        return self.learned >= MIN_LEARNED

    def score(self, features: Features) -> float:
        """Anomaly in [0, 1]; 0 while the trees have learned fewer than MIN_LEARNED samples
        and no verdicts have trained the classifier."""
        x = scale(features)
        tree_score = float(self.trees.score_one(x)) if self.ready else 0.0
        if not self.supervised:
            return tree_score
        fraud = self.classifier.predict_proba_one(x).get(True, 0.0)
        return (tree_score + float(fraud)) / 2.0

    def learn(self, features: Features) -> None:
        """Learn normal traffic from every LEARN_EVERY-th call."""
        self.calls += 1
        if self.calls % LEARN_EVERY:
            return
        self.trees.learn_one(scale(features))
        self.learned += 1

    def learn_feedback(self, features: Features, is_fraud: bool) -> None:
        """Learn an investigator's verdict on an alerted transaction."""
        self.classifier.learn_one(scale(features), is_fraud)
        self.verdicts[int(is_fraud)] += 1

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> AnomalyModel:
        model = pickle.loads(data)  # noqa: S301 - bytes written by this worker's own table
        if not isinstance(model, cls):
            raise ValueError(f"expected a pickled AnomalyModel, got {type(model).__name__}")
        return model
