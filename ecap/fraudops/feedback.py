"""The ``fraud-feedback`` record: an investigator's verdict on a case, for the detector.

``ecap cases verdict`` publishes one per verdict (key: transaction id); every transactions
worker reads them all and teaches its model, its rule precision counts and the merchant's
statistics. ``features`` are those the detector scored when it raised the alert (carried
from the alert's ``ecap-features`` header into the case), so the model learns the verdict
on what it actually saw.

This contract belongs in ``ecap/events.py`` with the others; it is kept here until it is
moved there (see docs/fraud-ops.md).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from ecap.events import Event, Id, UtcDatetime

FEATURES_HEADER = "ecap-features"
"""Header of a ``fraud-alerts`` record: the features the detector scored, as JSON."""


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


class FraudFeedback(Event):
    """An investigator's verdict on one alerted transaction. Key: ``transaction_id``."""

    case_id: int = Field(ge=1)
    alert_id: Id
    transaction_id: Id
    user_id: Id
    merchant_id: Id
    verdict: Verdict
    reasons: list[str] = Field(description="Codes of the alert's reasons (rule ids and models).")
    features: dict[str, float] | None = Field(
        None, description="The features the detector scored, when the alert carried them."
    )
    note: str | None = Field(None, max_length=2000)
    decided_by: str = Field(min_length=1, max_length=120)
    decided_at: UtcDatetime

    @property
    def is_fraud(self) -> bool:
        return self.verdict is Verdict.CONFIRMED
