"""The transactions worker's control topics: the live rule set and investigators' verdicts.

Every worker reads all of ``fraud-rules`` and ``fraud-feedback`` through
:class:`~ecap.kafka.broadcast.BroadcastReader` (no consumer group), so each holds the same
rule set and the same verdicts whatever partitions it owns:

* a valid rule set under ``ecap.fraud.rule_records.RULES_KEY`` replaces the running one at
  once (``on_ruleset`` hands it to the partitions' detectors); an invalid one is logged
  and ignored, and the running set stays;
* verdicts are kept in order; each partition learns the ones it has not learned yet at
  its next batch (``agents.transactions``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import ConsumerRecord

from ecap import metrics
from ecap.events import EventError, FraudFeedback, decode
from ecap.fraud import rule_records
from ecap.fraud.rules import RuleSet, load_default_rules
from ecap.kafka.broadcast import BroadcastReader
from ecap.topics import FRAUD_FEEDBACK, FRAUD_RULES
from tables.fraud_partition import Verdict

logger = logging.getLogger(__name__)


class FraudControl:
    """Follows the control topics and holds what they say (see the module docstring)."""

    def __init__(
        self, bootstrap: str, client_id: str, on_ruleset: Callable[[RuleSet], None]
    ) -> None:
        self.ruleset: RuleSet = load_default_rules()
        self.verdicts: list[Verdict] = []
        """Every verdict read, in the order read."""
        self.on_ruleset = on_ruleset
        self._version = metrics.RULESET_VERSION.labels(client_id)
        self.reader = BroadcastReader(
            bootstrap, (FRAUD_RULES, FRAUD_FEEDBACK), self.on_record, client_id=client_id
        )
        self._version.set(self.ruleset.version)

    @property
    def caught_up(self) -> asyncio.Event:
        """Set once both topics have been read to the end they had at start."""
        return self.reader.caught_up

    async def run(self) -> None:
        await self.reader.run()

    def on_record(self, record: ConsumerRecord[bytes, bytes], caught_up: bool) -> None:
        if record.topic == FRAUD_RULES:
            self._on_rules(record, caught_up)
        else:
            self._on_verdict(record)

    def _on_rules(self, record: ConsumerRecord[bytes, bytes], caught_up: bool) -> None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if record.key != rule_records.RULES_KEY:
            logger.warning("%s: ignoring a record with key %r, not a rule set", where, record.key)
            return
        try:
            ruleset = rule_records.parse(record.value)
        except rule_records.RuleSetError as exc:
            logger.error(
                "%s: rejected rule set: %s; still running rule set version %d",
                where,
                exc,
                self.ruleset.version,
            )
            return
        previous = self.ruleset.version
        self.ruleset = ruleset
        self.on_ruleset(ruleset)
        self._version.set(ruleset.version)
        log = logger.info if caught_up else logger.debug
        log(
            "%s: rule set version %d applied (%d rules enabled; was version %d)",
            where,
            ruleset.version,
            sum(r.enabled for r in ruleset.rules),
            previous,
        )

    def _on_verdict(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            verdict = decode(FraudFeedback, record.value or b"")
        except EventError as exc:
            logger.error(
                "%s[%d]@%d: not a verdict, skipped: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return
        self.verdicts.append((record.partition, record.offset, verdict))
