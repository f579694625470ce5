"""The live rule set on the compacted ``fraud-rules`` topic, for operators: read the
latest, push a new one, read one from a file.

The topic holds rule sets (``ecap.fraud.rules.RuleSet`` JSON) under one key
(``ecap.fraud.rule_records``); the latest valid record is the live set. Running
transactions workers follow the topic (``agents.fraud_control``) and swap their rule set
within a second of a push; a record that does not validate is refused by the workers,
which keep the set they run, and by ``ecap rules push`` before it is ever sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from ecap.fraud.rule_records import RULES_KEY, RuleSetError, parse
from ecap.fraud.rules import RuleSet, load_default_rules
from ecap.kafka import snapshot
from ecap.topics import FRAUD_RULES


def read_file(path: Path) -> RuleSet:
    """A rule set from a JSON file, with errors that name the file."""
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise RuleSetError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        json.loads(payload)
    except ValueError as exc:
        raise RuleSetError(f"{path} is not JSON: {exc}") from exc
    try:
        return parse(payload)
    except RuleSetError as exc:
        raise RuleSetError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class LiveRules:
    """What the topic says: the live rule set (None: nothing pushed) and its offset."""

    ruleset: RuleSet | None
    offset: int | None
    rejected: list[tuple[int, str]]
    """Records after the live one that workers refuse: (offset, error)."""

    def effective(self) -> RuleSet:
        """The rule set workers run: the live one, else the shipped defaults."""
        return self.ruleset if self.ruleset is not None else load_default_rules()


def latest(bootstrap: str, timeout: float = 15.0) -> LiveRules:
    """Read the whole ``fraud-rules`` topic and return its latest valid rule set."""
    live: RuleSet | None = None
    live_offset: int | None = None
    rejected: list[tuple[int, str]] = []
    try:
        for message in snapshot.records(bootstrap, FRAUD_RULES, timeout=timeout):
            if message.key() != RULES_KEY:
                continue
            offset = int(message.offset() or 0)
            try:
                live, live_offset = parse(message.value()), offset
                rejected.clear()
            except RuleSetError as exc:
                rejected.append((offset, str(exc)))
    except snapshot.SnapshotError as exc:
        raise RuleSetError(str(exc)) from exc
    return LiveRules(live, live_offset, rejected)


def push(bootstrap: str, ruleset: RuleSet, timeout: float = 15.0) -> int:
    """Publish ``ruleset`` as the live rule set; return its offset."""
    outcome: dict[str, object] = {}

    def delivered(error: KafkaError | None, message: Message) -> None:
        outcome["error"] = error
        outcome["offset"] = message.offset()

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(FRAUD_RULES, key=RULES_KEY, value=ruleset.to_json(), on_delivery=delivered)
    producer.flush(timeout)
    if "offset" not in outcome:
        raise RuleSetError(f"{bootstrap} did not acknowledge the rule set within {timeout} s")
    if outcome["error"] is not None:
        raise RuleSetError(f"{bootstrap} refused the rule set: {outcome['error']}")
    offset = outcome["offset"]
    assert isinstance(offset, int)
    return offset
