"""The transactions worker's control topics: the live rule set and investigators' verdicts.

Every worker reads all of ``fraud-rules`` and ``fraud-feedback`` through
:class:`~ecap.kafka.broadcast.BroadcastReader` (no consumer group), so each holds the same
rule set and the same verdicts whatever partitions it owns:

* a rule set under ``ecap.fraud.rule_records.RULES_KEY`` that the topic's fold accepts
  (signed with the rule-signing key, within the budget, valid, its version rising:
  ``ecap.fraud.rule_records.RuleSetLog``) replaces the running one at once
  (``on_ruleset`` hands it to the partitions' detectors); any other is logged, counted
  (``ecap_fraud_rulesets_rejected_total``), kept in :attr:`FraudControl.rejections` for
  ``/health``, and ignored: the running set stays. Without a usable signing key the
  worker refuses every pushed set and runs the shipped defaults;
* verdicts are kept in order; each partition learns the ones it has not learned yet at
  its next batch (``agents.transactions``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
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


REJECTIONS_KEPT = 10
"""How many of the latest refused rule sets ``/health`` shows."""


class FraudControl:
    """Follows the control topics and holds what they say (see the module docstring)."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        on_ruleset: Callable[[RuleSet], None],
        signing_key: rule_records.SigningKey,
    ) -> None:
        self.defaults = load_default_rules()
        self.rules = rule_records.RuleSetLog(signing_key)
        """The fold of ``fraud-rules``: the live rule set, when one was accepted."""
        self.rejections: deque[rule_records.Rejection] = deque(maxlen=REJECTIONS_KEPT)
        """The latest rule-set records refused, oldest first."""
        self.rejected: Counter[rule_records.Reason] = Counter()
        """Rule-set records refused since start, by reason."""
        self.verdicts: list[Verdict] = []
        """Every verdict read, in the order read."""
        self.on_ruleset = on_ruleset
        self._version = metrics.RULESET_VERSION.labels(client_id)
        self._rejected = {
            reason: metrics.RULESETS_REJECTED.labels(client_id, reason.value)
            for reason in rule_records.Reason
        }
        self.reader = BroadcastReader(
            bootstrap, (FRAUD_RULES, FRAUD_FEEDBACK), self.on_record, client_id=client_id
        )
        self._version.set(self.ruleset.version)
        if signing_key.secret is None:
            logger.error(
                "no usable rule-signing key: %s; every rule set pushed to %s will be "
                "refused and this worker runs the shipped rule set version %d",
                signing_key.problem,
                FRAUD_RULES,
                self.ruleset.version,
            )

    @property
    def ruleset(self) -> RuleSet:
        """The rule set in use: the live one, else the shipped defaults."""
        return self.rules.live if self.rules.live is not None else self.defaults

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
        signature = rule_records.signature(record.headers)
        previous = self.ruleset.version
        try:
            ruleset = self.rules.offer(record.offset, record.value, signature)
        except rule_records.RuleSetError as exc:
            self.rejections.append(rule_records.Rejection(record.offset, exc.reason, str(exc)))
            self.rejected[exc.reason] += 1
            self._rejected[exc.reason].inc()
            logger.error(
                "%s: rejected rule set (%s): %s; still running rule set version %d",
                where,
                exc.reason.value,
                exc,
                self.ruleset.version,
            )
            return
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
