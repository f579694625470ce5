"""The live rule set on the compacted ``fraud-rules`` topic, for operators: read the
latest, push a new one (signed), read one from a file.

The topic holds rule sets (``ecap.fraud.rules.RuleSet`` JSON) under one key, each signed
with the rule-signing key (``ecap.fraud.rule_records``). :func:`latest` folds the topic
with the same :class:`~ecap.fraud.rule_records.RuleSetLog` as the running transactions
workers (``agents.fraud_control``), so with the workers' key it shows the set they run
and every record they refuse, with the reason. Workers swap their rule set within a
second of a push; ``ecap rules push`` refuses a set the workers would refuse before it is
ever sent.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from ecap.fraud.rule_records import (
    RULES_KEY,
    SIGNATURE_HEADER,
    Rejection,
    RuleSetError,
    RuleSetLog,
    SigningKey,
    parse,
    sign,
    signature,
)
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
        return parse(payload)
    except RuleSetError as exc:
        raise RuleSetError(f"{path}: {exc}", exc.reason) from exc


@dataclass(frozen=True)
class LiveRules:
    """What the topic says, read with one signing key: the live rule set (None: nothing
    accepted) and its offset, the records refused, and the newest record that is a rule
    set whatever its signature (what ``ecap rules push --resign`` signs)."""

    ruleset: RuleSet | None
    offset: int | None
    rejected: list[Rejection]
    """Every record the workers refuse, in offset order."""
    newest: tuple[int, RuleSet] | None
    """(offset, rule set) of the newest record that validates, signed or not."""

    def effective(self) -> RuleSet:
        """The rule set workers run: the live one, else the shipped defaults."""
        return self.ruleset if self.ruleset is not None else load_default_rules()


def latest(bootstrap: str, key: SigningKey, timeout: float = 15.0) -> LiveRules:
    """Read the whole ``fraud-rules`` topic and decide on each record as the workers do."""
    log = RuleSetLog(key)
    rejected: list[Rejection] = []
    newest: tuple[int, RuleSet] | None = None
    try:
        for message in snapshot.records(bootstrap, FRAUD_RULES, timeout=timeout):
            if message.key() != RULES_KEY:
                continue
            offset = int(message.offset() or 0)
            value, headers = message.value(), message.headers()
            given = signature(headers.items() if isinstance(headers, dict) else headers)
            try:
                newest = (offset, log.offer(offset, value, given))
            except RuleSetError as exc:
                rejected.append(Rejection(offset, exc.reason, str(exc)))
                with contextlib.suppress(RuleSetError):
                    newest = (offset, parse(value))
    except snapshot.SnapshotError as exc:
        raise RuleSetError(str(exc)) from exc
    return LiveRules(log.live, log.live_offset, rejected, newest)


def push(bootstrap: str, ruleset: RuleSet, secret: bytes, timeout: float = 15.0) -> int:
    """Publish ``ruleset``, signed with ``secret``, as the live rule set; return its
    offset. A set the workers would refuse for its size or shape is refused here."""
    payload = ruleset.to_json()
    parse(payload)
    outcome: dict[str, object] = {}

    def delivered(error: KafkaError | None, message: Message) -> None:
        outcome["error"] = error
        outcome["offset"] = message.offset()

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(
        FRAUD_RULES,
        key=RULES_KEY,
        value=payload,
        headers=[(SIGNATURE_HEADER, sign(secret, payload))],
        on_delivery=delivered,
    )
    producer.flush(timeout)
    if "offset" not in outcome:
        raise RuleSetError(f"{bootstrap} did not acknowledge the rule set within {timeout} s")
    if outcome["error"] is not None:
        raise RuleSetError(f"{bootstrap} refused the rule set: {outcome['error']}")
    offset = outcome["offset"]
    assert isinstance(offset, int)
    return offset
