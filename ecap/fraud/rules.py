"""Fraud rules as data: validated, compiled once, evaluated per transaction.

A rule set is JSON (the value of the compacted ``fraud-rules`` topic and of
``default_rules.json``)::

    {
      "version": 3,
      "threshold": 0.5,
      "bands": {"critical": 0.9, "high": 0.75, "medium": 0.6},
      "rules": [
        {
          "id": "card_testing_burst",
          "description": "Several small payments with cards the user never used",
          "weight": 0.9,
          "condition": {"all": [
            {"feature": "small_amount_count_10m", "op": ">=", "value": 2},
            {"feature": "unknown_instruments_1h", "op": ">=", "value": 2}
          ]}
        }
      ]
    }

A condition is a clause ``{"feature", "op", "value"}`` over a name of
``ecap.fraud.features.FEATURE_NAMES`` with an op of :data:`OPS`, or ``{"all": [...]}``
/ ``{"any": [...]}`` of conditions. Nothing is ever evaluated as Python: each condition
is compiled into closures over ``operator`` functions when the rule set is validated.

A rule set is held to a static budget, so that no rule set can make scoring slow: at most
:data:`MAX_RULES` rules and :data:`MAX_RULESET_CLAUSES` clauses in all, each condition at
most :data:`MAX_DEPTH` deep with at most :data:`MAX_CLAUSES` clauses. A set over it fails
validation with an error of type :data:`OVER_BUDGET` (the record's size and JSON nesting
are bounded before parsing, by ``ecap.fraud.rule_records``).

``weight`` in (0, 1] is how strongly the rule alone indicates fraud: the detector
combines the weights of the rules that fire as a noisy-OR, so a rule whose weight reaches
``threshold`` alerts on its own and weaker rules alert together. ``threshold`` and
``bands`` (the lowest score of each priority; LOW is the rest above the threshold) belong
to the rule set so that they change at run time with it.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ecap.fraud.features import FEATURE_NAMES, Features

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
MAX_DEPTH = 4
"""Deepest condition: a clause is 1, an ``all``/``any`` of clauses 2."""
MAX_CLAUSES = 16
"""Most clauses in one rule's condition."""
MAX_RULES = 200
"""Most rules in a rule set (the shipped one has ten)."""
MAX_RULESET_CLAUSES = 400
"""Most clauses over all the rules of a set (the shipped one has 24)."""
OVER_BUDGET = "over_budget"
"""The pydantic error type of a rule set over the budget (see the module docstring)."""
RESERVED_CODES = frozenset({"amount_zscore", "anomaly_model", "merchant_risk"})
"""Reason codes of the detector's statistical components; no rule may take them."""

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.json")

Predicate = Callable[[Features], bool]


class Condition(BaseModel):
    """A clause (``feature``, ``op``, ``value``) or a combination (``all`` / ``any``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str | None = None
    op: str | None = None
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None

    @field_validator("feature")
    @classmethod
    def _known_feature(cls, name: str | None) -> str | None:
        if name is not None and name not in FEATURE_NAMES:
            raise ValueError(f"unknown feature {name!r}; use one of: {', '.join(FEATURE_NAMES)}")
        return name

    @field_validator("op")
    @classmethod
    def _known_op(cls, op: str | None) -> str | None:
        if op is not None and op not in OPS:
            raise ValueError(f"unknown op {op!r}; use one of: {' '.join(OPS)}")
        return op

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        clause = (self.feature, self.op, self.value)
        combos = [name for name in ("all", "any") if getattr(self, name) is not None]
        if any(part is not None for part in clause):
            if combos or None in clause:
                raise ValueError(
                    "a clause needs exactly 'feature', 'op' and 'value' (and no all/any), "
                    'e.g. {"feature": "tx_count_1m", "op": ">=", "value": 5}'
                )
        elif len(combos) != 1:
            raise ValueError(
                "a condition is a clause {feature, op, value} or exactly one of "
                '{"all": [...]} / {"any": [...]}'
            )
        elif not getattr(self, combos[0]):
            raise ValueError(f"'{combos[0]}' needs at least one condition")
        return self

    def depth(self) -> int:
        parts = self.all or self.any
        return 1 + max(c.depth() for c in parts) if parts else 1

    def clauses(self) -> int:
        parts = self.all or self.any
        return sum(c.clauses() for c in parts) if parts else 1

    def compile(self) -> Predicate:
        """A function of :class:`Features` that is True when the condition holds."""
        if self.feature is not None:
            assert self.op is not None
            assert self.value is not None
            return _clause(self.feature, self.op, self.value)
        if self.all:
            return _all([c.compile() for c in self.all])
        assert self.any
        return _any([c.compile() for c in self.any])


def _clause(feature: str, op: str, value: float) -> Predicate:
    get = operator.attrgetter(feature)
    if op == ">=":
        return lambda x: get(x) >= value
    if op == ">":
        return lambda x: get(x) > value
    if op == "<=":
        return lambda x: get(x) <= value
    if op == "<":
        return lambda x: get(x) < value
    if op == "==":
        return lambda x: get(x) == value
    compare = OPS[op]
    return lambda x: compare(get(x), value)


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda x: a(x) and b(x)
    if len(parts) == 3:
        a, b, c = parts
        return lambda x: a(x) and b(x) and c(x)
    return lambda x: all(p(x) for p in parts)


def _any(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda x: a(x) or b(x)
    return lambda x: any(p(x) for p in parts)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_.\-]+$")
    description: str = Field(min_length=1, max_length=300)
    condition: Condition
    weight: float = Field(gt=0, le=1, description="Strength of the rule alone, in (0, 1].")
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, rule_id: str) -> str:
        if rule_id in RESERVED_CODES:
            raise ValueError(
                f"rule id {rule_id!r} is reserved for the detector's own reasons "
                f"({', '.join(sorted(RESERVED_CODES))}); pick another id"
            )
        return rule_id

    @model_validator(mode="after")
    def _bounded(self) -> Rule:
        if self.condition.depth() > MAX_DEPTH:
            raise _over_budget(f"condition of rule {self.id!r} nests deeper than {MAX_DEPTH}")
        if self.condition.clauses() > MAX_CLAUSES:
            raise _over_budget(f"condition of rule {self.id!r} has more than {MAX_CLAUSES} clauses")
        return self


def _over_budget(message: str) -> PydanticCustomError:
    return PydanticCustomError(OVER_BUDGET, "{message}", {"message": message})


class PriorityBands(BaseModel):
    """Lowest score of each priority; scores from the threshold up to ``medium`` are LOW."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    critical: float = Field(0.9, gt=0, le=1)
    high: float = Field(0.75, gt=0, le=1)
    medium: float = Field(0.6, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> PriorityBands:
        if not self.medium <= self.high <= self.critical:
            raise ValueError(
                f"bands must rise: medium {self.medium} <= high {self.high} "
                f"<= critical {self.critical}"
            )
        return self


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule_id: str
    description: str
    weight: float


class RuleSet(BaseModel):
    """A versioned rule set; validating one compiles its enabled rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=0)
    threshold: float = Field(0.5, gt=0, lt=1, description="Alert at or above this score.")
    bands: PriorityBands = PriorityBands()
    rules: list[Rule]

    @model_validator(mode="after")
    def _within_budget(self) -> RuleSet:
        if len(self.rules) > MAX_RULES:
            raise _over_budget(
                f"{len(self.rules):,} rules, over the budget of {MAX_RULES}; merge or remove rules"
            )
        clauses = sum(rule.condition.clauses() for rule in self.rules)
        if clauses > MAX_RULESET_CLAUSES:
            raise _over_budget(
                f"{clauses:,} clauses in all, over the budget of {MAX_RULESET_CLAUSES}; "
                "simplify or remove rules"
            )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        counts = Counter(rule.id for rule in self.rules)
        duplicates = sorted(rule_id for rule_id, n in counts.items() if n > 1)
        if duplicates:
            raise ValueError(f"duplicate rule id(s): {', '.join(duplicates)}; ids must be unique")
        if self.bands.medium < self.threshold:
            raise ValueError(
                f"bands.medium {self.bands.medium} is below the threshold {self.threshold}; "
                "every band must be at or above the alert threshold"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        self.compiled  # noqa: B018 - compile once, when the rule set is loaded

    @cached_property
    def compiled(self) -> list[tuple[Predicate, RuleHit]]:
        """The enabled rules as (predicate, hit) pairs, in rule-set order."""
        return [
            (rule.condition.compile(), RuleHit(rule.id, rule.description, rule.weight))
            for rule in self.rules
            if rule.enabled
        ]

    def disable(self, rule_id: str) -> RuleSet:
        """A copy with ``rule_id`` disabled and the version bumped (``ecap rules disable``)."""
        if rule_id not in {r.id for r in self.rules}:
            raise KeyError(f"no rule {rule_id!r} in rule set version {self.version}")
        rules = [
            r.model_copy(update={"enabled": False}) if r.id == rule_id else r for r in self.rules
        ]
        return RuleSet.model_validate(
            {
                **self.model_dump(),
                "version": self.version + 1,
                "rules": [r.model_dump() for r in rules],
            }
        )

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def evaluate(ruleset: RuleSet, features: Features) -> list[RuleHit]:
    """The enabled rules whose condition holds, in rule-set order."""
    return [hit for predicate, hit in ruleset.compiled if predicate(features)]


def load_default_rules() -> RuleSet:
    """The shipped rule set, ``ecap/fraud/default_rules.json``."""
    return RuleSet.model_validate_json(DEFAULT_RULES_PATH.read_bytes())
