"""A rule set as a record of the compacted ``fraud-rules`` topic: its key, its size limit,
and :func:`parse`, which every reader of the topic (the workers, ``ecap rules``) applies.

Pure: the topic's I/O is ``ecap.fraudops.live_rules`` (operators) and
``agents.fraud_control`` (workers).
"""

from __future__ import annotations

from pydantic import ValidationError

from ecap.fraud.rules import RuleSet

RULES_KEY = b"rule_set"
"""The one key rule sets are written under; the latest valid record is the live set."""
MAX_RULESET_BYTES = 256 * 1024


class RuleSetError(ValueError):
    """A rule set that cannot be used; the message names what is wrong."""


def parse(payload: bytes | str | None) -> RuleSet:
    """Validate and compile a rule set, or raise :class:`RuleSetError` saying why."""
    if payload is None:
        raise RuleSetError("empty record (a tombstone), not a rule set")
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_RULESET_BYTES:
        raise RuleSetError(f"rule set is {len(raw):,} bytes, over {MAX_RULESET_BYTES:,}")
    try:
        return RuleSet.model_validate_json(raw)
    except ValidationError as exc:
        problems = []
        for item in exc.errors()[:5]:
            where = ".".join(str(p) for p in item["loc"]) or "(rule set)"
            problems.append(f"{where}: {item['msg']}")
        raise RuleSetError("invalid rule set: " + "; ".join(problems)) from exc
