"""Any client that could write to ``fraud-rules`` replaced the live rules: a version-0 set
was applied over version 2, 1,800 rules were accepted (scoring slowed 150-fold), and only
``ecap rules push`` checked anything. Now the transactions worker itself refuses a rule set
that is unsigned or signed with another key, whose version does not rise, or that is over
the budget (too many rules, nested too deep); each refusal is counted, shown on
``/health`` (with the token) and by ``ecap rules list``, and the running set stays.

One worker on a broker of its own; the tests run in file order and share it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from ecap import auth, workers_launcher
from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.fraud import rule_records
from ecap.fraud.rules import RuleSet, load_default_rules
from ecap.fraudops import live_rules
from ecap.fraudops.cli import rules_app
from ecap.kafka import admin
from ecap.settings import Settings, get_settings
from ecap.topics import FRAUD_RULES

READY_TIMEOUT_S = 120.0
DECISION_TIMEOUT_S = 20.0
LIVE_VERSION = 5


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    bootstrap: str
    worker: workers_launcher.WorkerProcess

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(self.worker.url + path, headers=auth.header(self.settings))
        with urllib.request.urlopen(request, timeout=10) as answer:
            body: bytes = answer.read()
            return body

    def rules(self) -> dict[str, Any]:
        rules: dict[str, Any] = json.loads(self.get("/health"))["rules"]
        return rules

    def wait_for(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + DECISION_TIMEOUT_S
        while not done(rules := self.rules()):
            log = self.worker.log.read_text(errors="replace")[-4000:]
            assert self.worker.running, log
            assert time.monotonic() < deadline, f"rules on /health: {rules}\n{log}"
            time.sleep(0.1)
        return rules

    def rejected(self, reason: str) -> float:
        """``ecap_fraud_rulesets_rejected_total`` of ``reason`` on ``/metrics``."""
        text = self.get("/metrics").decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "ecap_fraud_rulesets_rejected"
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels["reason"] == reason
        )

    def produce(self, value: bytes, signature: bytes | None) -> None:
        headers = [(rule_records.SIGNATURE_HEADER, signature)] if signature is not None else []
        producer = Producer({"bootstrap.servers": self.bootstrap})
        producer.produce(FRAUD_RULES, key=rule_records.RULES_KEY, value=value, headers=headers)
        assert producer.flush(10) == 0

    def signed(self, value: bytes) -> None:
        self.produce(value, rule_records.sign(auth.rules_signing_key(self.settings), value))

    def refused(self, reason: str) -> dict[str, Any]:
        """Wait until the worker has refused one record for ``reason``; check the metric
        and that the live set stayed."""
        rules = self.wait_for(lambda r: r["rejected"].get(reason) == 1)
        assert rules["version"] == LIVE_VERSION
        assert rules["latest_rejected"][-1]["reason"] == reason
        assert self.rejected(reason) == 1.0
        return rules


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("rules")
    entry = broker.start("127.0.0.1", free_port(), home)
    bootstrap = str(entry["address"])
    settings = Settings(home=home, kafka_bootstrap=bootstrap)
    admin.create_topics(admin.admin_client(bootstrap), replication=1)
    worker = workers_launcher.start(
        "transactions",
        0,
        web_port=free_port(),
        settings=settings,
        env={"ECAP_KAFKA_BOOTSTRAP": bootstrap},
    )
    try:
        made = Deployment(settings, bootstrap, worker)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                made.rules()
                break
            except OSError:
                assert worker.running, worker.log.read_text(errors="replace")[-4000:]
                assert time.monotonic() < deadline, "the worker never answered /health"
                time.sleep(0.5)
        yield made
    finally:
        workers_launcher.stop(settings)
        broker.stop(entry)


def ruleset(version: int, rules: int = 1) -> bytes:
    return orjson.dumps(
        {
            "version": version,
            "rules": [
                {
                    "id": f"rule_{i:04d}",
                    "description": "probe rule",
                    "weight": 0.01,
                    "condition": {"feature": "amount", "op": ">", "value": 100_000 + i},
                }
                for i in range(rules)
            ],
        }
    )


def test_a_rule_set_pushed_by_ecap_rules_push_is_applied(deployment: Deployment) -> None:
    pushed = RuleSet.model_validate_json(ruleset(LIVE_VERSION))
    live_rules.push(deployment.bootstrap, pushed, auth.rules_signing_key(deployment.settings))
    rules = deployment.wait_for(lambda r: r["version"] == LIVE_VERSION)
    assert rules["source"].startswith("fraud-rules offset ")
    assert rules["rejected"] == {}


def test_an_unsigned_rule_set_is_ignored_and_counted(deployment: Deployment) -> None:
    deployment.produce(ruleset(LIVE_VERSION + 1), signature=None)
    deployment.refused("unsigned")


def test_a_badly_signed_rule_set_is_ignored_and_counted(deployment: Deployment) -> None:
    value = ruleset(LIVE_VERSION + 1)
    deployment.produce(value, rule_records.sign(b"not the workers' key, but long enough", value))
    deployment.refused("bad_signature")


def test_a_lower_version_is_ignored_and_counted(deployment: Deployment) -> None:
    deployment.signed(ruleset(0))
    rules = deployment.refused("stale_version")
    assert "does not rise above the live version 5" in rules["latest_rejected"][-1]["error"]


def test_1800_rules_are_ignored_and_counted(deployment: Deployment) -> None:
    deployment.signed(ruleset(LIVE_VERSION + 1, rules=1_800))
    rules = deployment.refused("over_budget")
    assert "1,800 rules, over the budget of 200" in rules["latest_rejected"][-1]["error"]


def test_a_rule_set_nested_2000_deep_is_ignored_and_counted_without_recursion_error(
    deployment: Deployment,
) -> None:
    levels = 2_000
    deployment.signed(
        b'{"version": 9, "rules": [{"id": "deep", "description": "d", "weight": 0.5, '
        b'"condition": '
        + b'{"all": [' * levels
        + b'{"feature": "amount", "op": ">", "value": 1}'
        + b"]}" * levels
        + b"}]}"
    )
    rules = deployment.wait_for(lambda r: r["rejected"].get("over_budget") == 2)
    assert rules["version"] == LIVE_VERSION
    assert "nests 4,004 levels deep, over 16" in rules["latest_rejected"][-1]["error"]
    assert "RecursionError" not in deployment.worker.log.read_text(errors="replace")


def test_ecap_rules_list_shows_every_refused_set_with_its_reason(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECAP_HOME", str(deployment.settings.home))
    monkeypatch.setenv("ECAP_KAFKA_BOOTSTRAP", deployment.bootstrap)
    monkeypatch.delenv("ECAP_RULES_SIGNING_KEY", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(rules_app, ["list"], terminal_width=400)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"rule set version {LIVE_VERSION}: fraud-rules offset" in result.output
    refused = [line for line in result.output.splitlines() if "refused by the workers" in line]
    reasons = ["unsigned", "bad_signature", "stale_version", "over_budget", "over_budget"]
    assert [line.split("(")[1].split(")")[0] for line in refused] == reasons


def test_ecap_rules_push_resign_adopts_a_set_written_before_signing(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade path: a set written unsigned (as every set was before) is signed again
    by ``ecap rules push --resign`` and becomes live."""
    unsigned = orjson.loads(load_default_rules().to_json())
    unsigned["version"] = LIVE_VERSION + 3
    deployment.produce(orjson.dumps(unsigned), signature=None)
    deployment.wait_for(lambda r: r["rejected"].get("unsigned") == 2)
    monkeypatch.setenv("ECAP_HOME", str(deployment.settings.home))
    monkeypatch.setenv("ECAP_KAFKA_BOOTSTRAP", deployment.bootstrap)
    monkeypatch.delenv("ECAP_RULES_SIGNING_KEY", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(rules_app, ["push", "--resign"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rules = deployment.wait_for(lambda r: r["version"] == LIVE_VERSION + 3)
    assert rules["rejected"]["unsigned"] == 2
