"""The decision every reader of ``fraud-rules`` takes on a record: signed with the key,
within the budget, valid, its version rising; anything else is refused with a reason and
leaves the live rule set as it was."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecap.fraud import rule_records
from ecap.fraud.rule_records import Reason, RuleSetError, RuleSetLog, SigningKey
from ecap.fraud.rules import MAX_RULES, MAX_RULESET_CLAUSES, load_default_rules

SECRET = b"s" * 32
KEY = SigningKey(SECRET)
CLAUSE = {"feature": "amount", "op": ">", "value": 1}


def document(version: int, rules: int = 1, condition: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps(
        {
            "version": version,
            "rules": [
                {"id": f"r{i}", "description": "d", "weight": 0.5, "condition": condition or CLAUSE}
                for i in range(rules)
            ],
        }
    )


def deep(levels: int) -> bytes:
    """A one-rule set whose condition nests ``levels`` ``all``s deep, as bytes (too deep
    for ``json.dumps``)."""
    head = b'{"version": 9, "rules": [{"id": "deep", "description": "d", "weight": 0.5, '
    return (
        head
        + b'"condition": '
        + b'{"all": [' * levels
        + orjson.dumps(CLAUSE)
        + b"]}" * levels
        + b"}]}"
    )


def offer(log: RuleSetLog, offset: int, payload: bytes, secret: bytes | None = SECRET) -> Any:
    signature = rule_records.sign(secret, payload) if secret is not None else None
    return log.offer(offset, payload, signature)


def refusal(log: RuleSetLog, offset: int, payload: bytes, **kwargs: Any) -> RuleSetError:
    with pytest.raises(RuleSetError) as refused:
        offer(log, offset, payload, **kwargs)
    return refused.value


def test_a_signed_rule_set_becomes_live() -> None:
    log = RuleSetLog(KEY)
    assert offer(log, 3, document(2)).version == 2
    assert (log.live and log.live.version, log.live_offset) == (2, 3)


def test_the_first_accepted_set_may_have_any_version() -> None:
    assert offer(RuleSetLog(KEY), 0, document(0)).version == 0


def test_an_unsigned_record_is_refused() -> None:
    error = refusal(RuleSetLog(KEY), 0, document(2), secret=None)
    assert error.reason is Reason.UNSIGNED
    assert "ecap rules push --resign" in str(error)


def test_a_record_signed_with_another_key_is_refused() -> None:
    error = refusal(RuleSetLog(KEY), 0, document(2), secret=b"x" * 32)
    assert error.reason is Reason.BAD_SIGNATURE
    assert "ECAP_RULES_SIGNING_KEY" in str(error)


def test_a_signature_of_other_bytes_is_refused() -> None:
    log = RuleSetLog(KEY)
    with pytest.raises(RuleSetError) as refused:
        log.offer(0, document(3), rule_records.sign(SECRET, document(2)))
    assert refused.value.reason is Reason.BAD_SIGNATURE


def test_without_a_key_every_record_is_refused() -> None:
    log = RuleSetLog(SigningKey(None, "the key file is empty"))
    error = refusal(log, 0, document(2))
    assert error.reason is Reason.NO_KEY
    assert "the key file is empty" in str(error)


@pytest.mark.parametrize("version", [0, 4])
def test_a_version_that_does_not_rise_is_refused_and_the_live_set_stays(version: int) -> None:
    log = RuleSetLog(KEY)
    offer(log, 0, document(4))
    error = refusal(log, 1, document(version))
    assert error.reason is Reason.STALE_VERSION
    assert f"version {version} does not rise above the live version 4 (offset 0)" in str(error)
    assert (log.live and log.live.version, log.live_offset) == (4, 0)
    assert offer(log, 2, document(5)).version == 5


def test_more_rules_than_the_budget_are_refused() -> None:
    error = refusal(RuleSetLog(KEY), 0, document(2, rules=MAX_RULES + 1))
    assert error.reason is Reason.OVER_BUDGET
    assert f"{MAX_RULES + 1} rules, over the budget of {MAX_RULES}" in str(error)


def test_more_clauses_than_the_budget_are_refused() -> None:
    condition = {"all": [CLAUSE] * 3}
    rules = MAX_RULESET_CLAUSES // 3 + 1
    assert rules <= MAX_RULES
    error = refusal(RuleSetLog(KEY), 0, document(2, rules=rules, condition=condition))
    assert error.reason is Reason.OVER_BUDGET
    assert f"clauses in all, over the budget of {MAX_RULESET_CLAUSES}" in str(error)


def test_a_rule_set_at_the_budget_is_accepted() -> None:
    rules = MAX_RULESET_CLAUSES // 2
    assert rules <= MAX_RULES
    accepted = offer(RuleSetLog(KEY), 0, document(2, rules=rules, condition={"all": [CLAUSE] * 2}))
    assert len(accepted.rules) == rules


def test_a_record_over_the_byte_limit_is_refused_before_its_signature_is_checked() -> None:
    payload = document(2) + b" " * rule_records.MAX_RULESET_BYTES
    error = refusal(RuleSetLog(KEY), 0, payload, secret=None)
    assert error.reason is Reason.OVER_BUDGET


@pytest.mark.parametrize("levels", [5, 2_000, 20_000])
def test_a_deeply_nested_record_is_refused_without_recursing(levels: int) -> None:
    error = refusal(RuleSetLog(KEY), 0, deep(levels))
    assert error.reason is Reason.OVER_BUDGET


def test_a_condition_deeper_than_the_rules_allow_is_over_budget() -> None:
    error = refusal(RuleSetLog(KEY), 0, deep(4))
    assert error.reason is Reason.OVER_BUDGET
    assert "nests deeper than 4" in str(error)


def test_an_invalid_rule_set_is_refused_as_invalid() -> None:
    error = refusal(RuleSetLog(KEY), 0, b'{"version": 5, "rules": "x"}')
    assert error.reason is Reason.INVALID
    assert "rules: Input should be a valid array" in str(error)


def test_a_tombstone_is_refused() -> None:
    with pytest.raises(RuleSetError, match="tombstone"):
        RuleSetLog(KEY).offer(0, None, None)


def test_the_shipped_rules_are_within_every_limit() -> None:
    payload = load_default_rules().to_json()
    assert rule_records.nesting(payload) <= rule_records.MAX_NESTING
    assert offer(RuleSetLog(KEY), 0, payload).version == load_default_rules().version


def test_the_signature_header_is_found_among_others() -> None:
    headers = [("other", b"x"), (rule_records.SIGNATURE_HEADER, b"sig")]
    assert rule_records.signature(headers) == b"sig"
    assert rule_records.signature(None) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab'), children, max_size=3)
    ),
    max_leaves=20,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_nesting_is_the_depth_of_valid_json_whatever_its_strings_hold(value: Any) -> None:
    assert rule_records.nesting(json.dumps(value).encode()) == _depth(value)
