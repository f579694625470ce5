"""A verdict recorded through the API closes the case and arrives on ``fraud-feedback``
of a real broker, as ``ecap cases verdict`` sends it."""

from __future__ import annotations

from ecap.events import FraudFeedback, decode
from ecap.kafka import snapshot
from ecap.topics import FRAUD_FEEDBACK

from .conftest import Api, Cases, alert


def _feedback(api: Api) -> list[FraudFeedback]:
    bootstrap = api.settings.kafka_bootstrap
    assert bootstrap is not None
    return [
        decode(FraudFeedback, message.value())  # type: ignore[arg-type]
        for message in snapshot.records(bootstrap, FRAUD_FEEDBACK)
    ]


def test_a_verdict_arrives_on_fraud_feedback(api: Api, cases: Cases) -> None:
    (case_id,) = cases.open(alert(42))
    response = api.client.post(
        f"/api/v1/cases/{case_id}/verdict",
        json={"resolution": "fraud", "note": "card reported stolen"},
        headers=api.as_user("ivy"),
    )
    sent = [f for f in _feedback(api) if f.transaction_id == "t-42"]
    assert response.status_code == 200
    assert [(f.case_id, f.verdict.value, f.decided_by, f.note, f.reasons) for f in sent] == [
        (case_id, "confirmed", "ivy", "card reported stolen", ["amount_spike"])
    ]


def test_a_published_verdict_is_marked_published(api: Api, cases: Cases) -> None:
    (case_id,) = cases.open(alert(43))
    api.client.post(
        f"/api/v1/cases/{case_id}/verdict",
        json={"resolution": "legitimate"},
        headers=api.as_user("ivy"),
    )
    rows = api.sql("SELECT verdict, published_at FROM fraud_verdicts WHERE case_id = $1", case_id)
    assert [(r["verdict"], r["published_at"] is not None) for r in rows] == [
        ("false_positive", True)
    ]


def test_a_second_verdict_on_a_closed_case_is_409(api: Api, cases: Cases) -> None:
    (case_id,) = cases.open(alert(44))
    headers = api.as_user("ivy")
    url = f"/api/v1/cases/{case_id}/verdict"
    api.client.post(url, json={"resolution": "fraud"}, headers=headers)
    assert (
        api.client.post(url, json={"resolution": "legitimate"}, headers=headers).status_code == 409
    )
