"""One transactions worker and one alerts worker on a fresh broker and database.

The tests run in file order and share the processes: the generated stream first (so the
worker's state matches the offline reference), then redelivery, live rules and bad input,
each on users and a merchant of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ecap import auth
from ecap.currency import max_amount
from ecap.events import (
    MAX_RECORD_BYTES,
    EventError,
    FraudFeedback,
    Transaction,
    decode,
    encode,
)
from ecap.fraud import rule_records
from ecap.fraud.state import MAX_SEEN
from ecap.fraudops import live_rules
from ecap.kafka import snapshot
from ecap.topics import FRAUD_FEEDBACK, FRAUD_RULES
from tables.user_state import partition_for

from .conftest import Dataset, FraudDeployment, fetch, transaction

pytestmark = pytest.mark.integration

REDELIVERED = 400
RULE_AMOUNT = 4321.09
RULE_ID = "test_exact_amount"


def test_one_worker_alerts_as_the_reference_and_opens_one_case_per_alert(
    deployment: FraudDeployment, dataset: Dataset, expected_alerts: set[str]
) -> None:
    deployment.send(dataset.transactions)
    deployment.wait_until_processed()

    alerted = [alert.transaction_id for alert in deployment.alerts()]
    assert set(alerted) == expected_alerts
    assert len(alerted) == len(set(alerted)), "an alert was raised twice"
    deployment.wait_for_cases(expected_alerts)
    cases = Counter(row["transaction_id"] for row in deployment.cases())
    assert set(cases) == expected_alerts
    assert set(cases.values()) == {1}


def test_each_user_state_counts_each_transaction_once(
    deployment: FraudDeployment, dataset: Dataset
) -> None:
    states = deployment.user_states()
    counts = {user: len(ids) for user, ids in dataset.by_user().items()}
    assert {user: states[user].count for user in counts} == counts


def test_redelivered_transactions_raise_no_new_alert_and_change_no_state(
    deployment: FraudDeployment, dataset: Dataset
) -> None:
    """Redelivery after a crash repeats what followed the last commit: at most a batch or
    two, so fewer records per user than the state remembers ids of (MAX_SEEN)."""
    tail = dataset.transactions[-REDELIVERED:]
    per_user = Counter(record.key for record in tail)
    assert max(per_user.values()) <= MAX_SEEN
    before = len(deployment.alerts())
    deployment.send(tail)
    deployment.send(tail)
    deployment.wait_until_processed()

    assert len(deployment.alerts()) == before
    states = deployment.user_states()
    counts = {user: len(ids) for user, ids in dataset.by_user().items()}
    assert {user: states[user].count for user in counts} == counts


def _wait_for_alert(deployment: FraudDeployment, transaction_id: str, timeout: float) -> set[str]:
    """The reason codes of the alert on ``transaction_id`` once it is on the topic."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for alert in deployment.alerts():
            if alert.transaction_id == transaction_id:
                return {reason.code for reason in alert.reasons}
        time.sleep(0.1)
    raise AssertionError(f"no alert on {transaction_id} within {timeout} s\n{deployment.logs()}")


def _alerted(deployment: FraudDeployment, record_value: bytes) -> bool:
    tx_id = decode(Transaction, record_value).transaction_id
    return any(alert.transaction_id == tx_id for alert in deployment.alerts())


def test_a_rule_pushed_while_the_worker_runs_fires_on_the_next_matching_event(
    deployment: FraudDeployment,
) -> None:
    before = transaction("rule-user-before", RULE_AMOUNT, merchant_id="m-rule-test")
    deployment.send([before])
    deployment.wait_until_processed()
    assert not _alerted(deployment, before.value), "the amount alone must not alert"

    key = rule_records.SigningKey(auth.rules_signing_key(deployment.settings))
    live = live_rules.latest(deployment.bootstrap, key).effective()
    rule = {
        "id": RULE_ID,
        "description": "Exactly the amount the test sends",
        "weight": 0.95,
        "condition": {
            "all": [
                {"feature": "amount", "op": ">=", "value": RULE_AMOUNT - 0.001},
                {"feature": "amount", "op": "<=", "value": RULE_AMOUNT + 0.001},
            ]
        },
    }
    pushed = rule_records.parse(
        orjson.dumps(
            {
                **orjson.loads(live.to_json()),
                "version": live.version + 1,
                "rules": [*orjson.loads(live.to_json())["rules"], rule],
            }
        )
    )
    assert key.secret is not None
    live_rules.push(deployment.bootstrap, pushed, key.secret)
    time.sleep(1.0)  # the acceptance: a change takes effect within a second

    after = transaction("rule-user-after", RULE_AMOUNT, merchant_id="m-rule-test")
    deployment.send([after])
    reasons = _wait_for_alert(deployment, decode(Transaction, after.value).transaction_id, 10.0)
    assert RULE_ID in reasons


def test_an_invalid_rule_set_is_refused_and_the_running_one_stays(
    deployment: FraudDeployment,
) -> None:
    invalid = b'{"version": 99, "rules": "x"}'
    signature = rule_records.sign(auth.rules_signing_key(deployment.settings), invalid)
    producer = Producer({"bootstrap.servers": deployment.bootstrap})
    producer.produce(
        FRAUD_RULES,
        key=rule_records.RULES_KEY,
        value=invalid,
        headers=[(rule_records.SIGNATURE_HEADER, signature)],
    )
    assert producer.flush(10) == 0
    worker = deployment.workers[0]
    deadline = time.monotonic() + 10
    while "rejected rule set" not in deployment.log(worker):
        assert time.monotonic() < deadline, f"no rejection logged\n{deployment.logs()}"
        time.sleep(0.1)
    line = next(x for x in deployment.log(worker).splitlines() if "rejected rule set" in x)
    assert "rules: Input should be a valid array" in line
    assert "still running rule set version" in line

    again = transaction("rule-user-again", RULE_AMOUNT, merchant_id="m-rule-test")
    deployment.send([again])
    reasons = _wait_for_alert(deployment, decode(Transaction, again.value).transaction_id, 10.0)
    assert RULE_ID in reasons


def _ecap(deployment: FraudDeployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecap.cli", *args],
        env={**os.environ, "ECAP_HOME": str(deployment.home), **deployment.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_evaluate_reports_the_recall_of_the_alerts_against_the_labels(
    deployment: FraudDeployment, dataset: Dataset, expected_alerts: set[str], tmp_path: Path
) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b"\n".join(encode(label) for label in dataset.labels) + b"\n")
    report = tmp_path / "quality.json"

    result = _ecap(
        deployment, "evaluate", "fraud", "--labels-file", str(labels), "--json", str(report)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(report.read_text())
    frauds = {label.transaction_id for label in dataset.labels}
    assert figures["overall"]["recall"] == len(expected_alerts & frauds) / len(frauds)
    assert set(figures["by_scenario"]) == {label.scenario.value for label in dataset.labels}
    assert figures["overall"]["latency_ms"]["count"] >= len(expected_alerts)


def test_a_verdict_is_stored_published_and_learned_by_the_worker(
    deployment: FraudDeployment,
) -> None:
    case = asyncio.run(
        fetch(
            deployment.dsn,
            "SELECT case_id, user_id FROM fraud_cases WHERE status = 'new' ORDER BY case_id",
        )
    )[0]
    result = _ecap(deployment, "cases", "verdict", str(case["case_id"]), "--confirmed")
    assert result.returncode == 0, result.stdout + result.stderr

    stored = asyncio.run(
        fetch(
            deployment.dsn,
            "SELECT c.status, c.resolution, v.verdict, v.published_at FROM fraud_cases c "
            "JOIN fraud_verdicts v USING (case_id) WHERE case_id = $1",
            case["case_id"],
        )
    )
    assert [(r["status"], r["resolution"], r["verdict"]) for r in stored] == [
        ("closed", "fraud", "confirmed")
    ]
    assert stored[0]["published_at"] is not None
    published = [
        decode(FraudFeedback, m.value() or b"")
        for m in snapshot.records(deployment.bootstrap, FRAUD_FEEDBACK)
    ]
    assert [f.case_id for f in published] == [case["case_id"]]
    assert published[0].features, "the verdict carries the features the detector scored"

    # the verdict is learned with the next batch of the user's partition
    deployment.send([transaction(case["user_id"], 15.0, merchant_id="m-verdict-test")])
    deployment.wait_until_processed()
    partition = str(partition_for(case["user_id"]))
    view = deployment.detector(deployment.workers[0]) or {}
    assert view["partitions"][partition]["verdicts_learned"] == 1


# ---------------------------------------------------------------------- bad input

_VALID: dict[str, object] = orjson.loads(transaction("fuzz-template", 12.5).value)
_REQUIRED = [
    "transaction_id",
    "event_time",
    "user_id",
    "merchant_id",
    "amount",
    "currency",
    "items",
    "payment_method",
    "payment_instrument_id",
    "device_id",
    "ip_address",
    "channel",
    "location",
]


def _with(**fields: object) -> bytes:
    return orjson.dumps({**_VALID, **fields})


_random_bytes = st.binary(min_size=0, max_size=2000)
_wrong_types = st.tuples(
    st.sampled_from(_REQUIRED), st.sampled_from([None, [], {}, [1, 2], {"a": 1}, True])
).map(lambda pair: _with(**{pair[0]: pair[1]}))
_missing_fields = st.sets(st.sampled_from(_REQUIRED), min_size=1, max_size=4).map(
    lambda names: orjson.dumps({k: v for k, v in _VALID.items() if k not in names})
)
_ABOVE_LIMIT = float(max_amount(str(_VALID["currency"])) or 0) + 0.01
"""Just above the plausibility limit (1,000,000 EUR) in the template's currency."""
_absurd_amounts = st.one_of(
    st.floats(min_value=_ABOVE_LIMIT, max_value=1e300).map(lambda a: _with(amount=a)),
    st.floats(min_value=-1e300, max_value=-0.01).map(lambda a: _with(amount=a)),
    st.sampled_from([b"1e999", b"-1e999", b'"NaN"', b"0.001", b'"lots"']).map(
        lambda text: _with(amount=0).replace(b'"amount":0', b'"amount":' + text)
    ),
)
_unicode = st.one_of(
    st.text(min_size=1, max_size=60).map(lambda t: _with(user_id=t, merchant_id=t)),
    st.text(min_size=0, max_size=500).map(str.encode),
)
_oversized = st.integers(MAX_RECORD_BYTES + 1, MAX_RECORD_BYTES + 100_000).map(
    lambda size: _with(note="x" * size)[:size]
)
_bad_inputs = st.tuples(
    st.lists(
        st.one_of(_random_bytes, _wrong_types, _missing_fields, _absurd_amounts, _unicode),
        min_size=20,
        max_size=40,
        unique=True,
    ),
    st.lists(_oversized, min_size=1, max_size=2, unique=True),
)


def _failure_stage(payload: bytes) -> str | None:
    """The stage at which ``payload`` fails to decode here, or None if it is valid."""
    try:
        decode(Transaction, payload)
    except EventError as exc:
        return exc.stage.value
    return None


@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking would resend for minutes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_bad_inputs)
def test_bad_input_lands_in_the_dead_letter_topic_and_the_worker_goes_on(
    deployment: FraudDeployment, bad: tuple[list[bytes], list[bytes]]
) -> None:
    payloads = [*bad[0], *bad[1]]
    expected = {p: stage for p in payloads if (stage := _failure_stage(p)) is not None}
    before = len(deployment.dead_letters())
    deployment.send_raw(payloads)
    valid = transaction(f"fuzz-after-{time.monotonic_ns()}", 20.0, merchant_id="m-fuzz-test")
    deployment.send([valid])
    deployment.wait_until_processed()

    letters = deployment.dead_letters()[before:]
    found = Counter((letter.payload(), letter.stage.value) for letter in letters)
    for payload, stage in expected.items():
        assert found[(payload, stage)] == 1, f"{payload[:80]!r} not dead-lettered at {stage}"
    assert all(letter.error and letter.source_topic == "transactions" for letter in letters)
    deployment.check_alive()
    states = deployment.user_states()
    assert states[decode(Transaction, valid.value).user_id].count == 1
